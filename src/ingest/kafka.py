"""Kafka source (aiokafka consumer group) and dead-letter producer.

- Values use the MQTT payload JSON; keys are site ids.  Messages forwarded by a riskmon gateway
  carry ``riskmon-*`` headers (origin, MQTT topic, tenant, site, receive time).
- Offsets are committed only for messages the pipeline has stored (their ``done`` callback),
  and only after their rejected readings reached the dead-letter topic.
- When the pipeline falls behind (``backlog()`` above the high mark) the source pauses its
  partitions, and resumes them under the low mark: it never buffers without bound.
- Rebalances call the processor's hooks: ``on_revoked`` before giving partitions away (drain,
  commit, snapshot state) and ``on_assigned`` after taking some, with the offset each starts
  from without a replay (its committed offset, or the log's start): it restores state, may
  return offsets to replay from, and snapshots the partitions it has no snapshot of at their
  start, so a process killed before its first periodic snapshot is replayed from the state it
  had instead of starting its windows empty.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from ingest.raw import RawMessage

log = logging.getLogger(__name__)
SOURCE = "kafka"
HEADER_PREFIX = "riskmon-"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    topic: str = "riskmon.readings"
    dlq_topic: str = "riskmon.readings.dlq"
    group_id: str = "riskmon-processor"
    client_id: str = "riskmon"
    max_records: int = 2000
    high_watermark: int = 5000
    low_watermark: int = 1000
    commit_interval_s: float = 0.5
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_file: str | None = None


def client_options(config: KafkaConfig) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "security_protocol": config.security_protocol,
    }
    if config.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=config.ssl_ca_file)
    if config.sasl_mechanism:
        options.update(
            sasl_mechanism=config.sasl_mechanism,
            sasl_plain_username=config.sasl_username,
            sasl_plain_password=config.sasl_password,
        )
    return options


class PartitionHooks(Protocol):
    async def on_revoked(self, partitions: list[int]) -> None: ...

    async def on_assigned(
        self, partitions: list[int], starts: dict[int, int]
    ) -> dict[int, int]: ...


class NoHooks:
    async def on_revoked(self, partitions: list[int]) -> None:
        return None

    async def on_assigned(self, partitions: list[int], starts: dict[int, int]) -> dict[int, int]:
        return {}


@dataclass
class KafkaStats:
    """Observations for metrics, set by the source."""

    on_commit: Callable[[], None] = lambda: None
    on_dlq: Callable[[str], None] = lambda reason: None
    on_rebalance: Callable[[], None] = lambda: None
    on_lag: Callable[[int, int], None] = lambda partition, lag: None
    on_pause: Callable[[], None] = lambda: None


def headers_of(record: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in record.headers or ():
        if key.startswith(HEADER_PREFIX) and value is not None:
            out[key[len(HEADER_PREFIX) :]] = value.decode("utf-8", "replace")
    return out


def to_raw(record: Any, done: Callable[[Any], object]) -> RawMessage:
    """A Kafka record as a raw message: site from the gateway header or the key."""
    h = headers_of(record)
    key = record.key.decode("utf-8", "replace") if record.key else None
    origin = h.get("origin")
    site: str | None = h.get("site") or key
    if origin == "http":  # an HTTP batch: no topic, no site to check against
        site = None
    received = float(h["received"]) if "received" in h else time.time()
    return RawMessage(
        record.value or b"",
        SOURCE,
        received,
        topic=h.get("topic"),
        tenant=h.get("tenant"),
        site=site,
        done=done,
    )


class KafkaSource:
    def __init__(
        self,
        config: KafkaConfig,
        submit: Callable[[RawMessage], Awaitable[None]],
        backlog: Callable[[], int],
        hooks: PartitionHooks | None = None,
        stats: KafkaStats | None = None,
    ) -> None:
        self.config = config
        self.submit = submit
        self.backlog = backlog
        self.hooks = hooks or NoHooks()
        self.stats = stats or KafkaStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.dlq: AIOKafkaProducer | None = None
        self.connected = False
        self.assigned: set[int] = set()
        self.revoking: set[int] = set()
        self.settling: set[int] = set()  # being assigned: their records are not submitted yet
        self._epoch = 0  # bumped by every rebalance
        self.partition_total = 0
        self._processed: dict[int, int] = {}  # partition -> next offset to commit
        self._committed: dict[int, int] = {}
        self._dlq_pending: list[asyncio.Future[Any]] = []
        self._paused = False
        self._stopping = False

    async def run(self) -> None:
        c = self.config
        self.consumer = AIOKafkaConsumer(
            group_id=c.group_id,
            client_id=c.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms,
            **client_options(c),
        )
        self.dlq = AIOKafkaProducer(client_id=f"{c.client_id}-dlq", acks="all", **client_options(c))
        await self._start_with_retry()
        self.consumer.subscribe([c.topic], listener=_Listener(self))
        self.connected = True
        commits = asyncio.create_task(self._commit_loop())
        try:
            await self._consume()
        finally:
            commits.cancel()

    def stop_fetching(self) -> None:
        """Stop taking new records (shutdown step 1; the pipeline then drains)."""
        self._stopping = True

    async def close(self) -> None:
        """Shutdown step 2, once the pipeline is idle: hand state over, commit, leave."""
        try:
            if self.assigned:
                await self.hooks.on_revoked(sorted(self.assigned))
            await asyncio.wait_for(self.commit(), 10)
        except (KafkaError, TimeoutError) as err:
            log.warning("final commit failed: %s", err)
        finally:
            self.connected = False
            if self.consumer is not None:
                await self.consumer.stop()
            if self.dlq is not None:
                await self.dlq.stop()

    async def _start_with_retry(self) -> None:
        assert self.consumer is not None and self.dlq is not None
        delay = 0.5
        while True:
            try:
                await self.consumer.start()
                await self.dlq.start()
                return
            except KafkaError as err:
                log.warning(
                    "Kafka %s unreachable (%s); retrying in %.1fs",
                    self.config.bootstrap_servers,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _consume(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self._stopping:
            self._flow_control()
            batches = await consumer.getmany(timeout_ms=200, max_records=self.config.max_records)
            epoch = self._epoch
            for tp, records in batches.items():
                for record in records:
                    p = tp.partition
                    if epoch != self._epoch or p in self.revoking or p in self.settling:
                        # A rebalance came between the fetch and now, or is taking the
                        # partition: positions are set to the committed or snapshot offsets,
                        # so these are read again, in order, after the state is restored.
                        # Submitting them now would judge them too early or out of order.
                        break
                    await self.submit(to_raw(record, self._done_callback(tp.partition, record)))
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                if high is not None:
                    position = self._processed.get(tp.partition, self._committed.get(tp.partition))
                    if position is not None:
                        self.stats.on_lag(tp.partition, max(0, high - position))

    def _flow_control(self) -> None:
        assert self.consumer is not None
        depth = self.backlog()
        parts = list(self.consumer.assignment())
        if not self._paused and depth >= self.config.high_watermark:
            self.consumer.pause(*parts)
            self._paused = True
            self.stats.on_pause()
            log.info("pipeline backlog %d: pausing %d partitions", depth, len(parts))
        elif self._paused and depth <= self.config.low_watermark:
            self.consumer.resume(*parts)
            self._paused = False
            log.info("pipeline backlog %d: resuming", depth)

    def _done_callback(self, partition: int, record: Any) -> Callable[[Any], object]:
        def done(outcome: Any) -> None:
            for reject in getattr(outcome, "rejects", ()):
                self._dead_letter(record, reject)
            if partition in self.assigned:
                self._processed[partition] = record.offset + 1

        return done

    def _dead_letter(self, record: Any, reject: Any) -> None:
        if self.dlq is None:
            return
        headers = [
            ("reason", reject.reason.encode()),
            ("detail", (reject.detail or "").encode()),
            ("source-partition", str(record.partition).encode()),
            ("source-offset", str(record.offset).encode()),
        ]
        future = asyncio.ensure_future(
            self.dlq.send_and_wait(
                self.config.dlq_topic, reject.raw.encode(), key=record.key, headers=headers
            )
        )
        self._dlq_pending.append(future)
        self.stats.on_dlq(reject.reason)

    async def commit(self) -> None:
        """Commit what the pipeline has stored (after the dead letters are acknowledged)."""
        if self._dlq_pending:
            pending, self._dlq_pending = self._dlq_pending, []
            await asyncio.gather(*pending)
        todo = {
            TopicPartition(self.config.topic, p): off
            for p, off in self._processed.items()
            if p in self.assigned and off > self._committed.get(p, -1)
        }
        if todo and self.consumer is not None:
            await self.consumer.commit(todo)
            for tp, off in todo.items():
                self._committed[tp.partition] = off
            self.stats.on_commit()

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval_s)
            try:
                await self.commit()
            except KafkaError as err:
                log.warning("offset commit failed (will retry): %s", err)

    async def _learn_partition_count(self) -> None:
        """How many partitions the topic has (sites map to partitions by it)."""
        assert self.consumer is not None
        for _ in range(50):
            parts = self.consumer.partitions_for_topic(self.config.topic)
            if parts:
                self.partition_total = len(parts)
                return
            await self.consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise KafkaError(f"no metadata for topic {self.config.topic}")

    def processed_offsets(self, partitions: list[int]) -> dict[int, int]:
        return {p: self._processed[p] for p in partitions if p in self._processed}

    async def revoked(self, partitions: list[int]) -> None:
        self.stats.on_rebalance()
        self._epoch += 1
        # Records already fetched for these partitions are not submitted any more; what the
        # pipeline holds is stored before the state is handed over.
        self.revoking.update(partitions)
        try:
            await self.hooks.on_revoked(partitions)
            await self.commit()
        finally:
            for p in partitions:
                self.assigned.discard(p)
                self.revoking.discard(p)
                self._processed.pop(p, None)
                self._committed.pop(p, None)

    async def assigned_partitions(self, partitions: list[int]) -> None:
        """Take partitions: learn where each starts, let the hooks restore state, and put
        every partition at its start.  The fetcher may already return records of them
        meanwhile; they are not submitted (``settling``) but read again from the start, so
        nothing is judged before the state is restored, nor out of order after a replay."""
        assert self.consumer is not None
        self._epoch += 1
        self.settling.update(partitions)
        try:
            await self._learn_partition_count()
            self.assigned.update(partitions)
            tps = {p: TopicPartition(self.config.topic, p) for p in partitions}
            for p, tp in tps.items():
                committed = await self.consumer.committed(tp)
                if committed is not None:
                    self._committed[p] = committed
            # without a committed offset a partition starts at the log's start (earliest)
            unknown = [tp for p, tp in tps.items() if p not in self._committed]
            starts = {p: self._committed[p] for p in partitions if p in self._committed}
            starts |= {tp.partition: off for tp, off in (await self._beginning(unknown)).items()}
            replay = await self.hooks.on_assigned(partitions, starts)
            for p, tp in tps.items():
                if p in replay and replay[p] != self._committed.get(p):
                    log.info(
                        "partition %d: replaying from snapshot offset %d (committed %s)",
                        p,
                        replay[p],
                        self._committed.get(p),
                    )
                self.consumer.seek(tp, replay.get(p, starts[p]))
            if self._paused:
                self.consumer.pause(*tps.values())
        finally:
            self.settling.difference_update(partitions)
            self._epoch += 1  # what was fetched before the seeks is not submitted

    async def _beginning(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        assert self.consumer is not None
        return dict(await self.consumer.beginning_offsets(tps)) if tps else {}


@dataclass
class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    source: KafkaSource
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        parts = sorted(tp.partition for tp in revoked)
        if parts:
            log.info("partitions revoked: %s", parts)
            await self.source.revoked(parts)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        parts = sorted(tp.partition for tp in assigned)
        log.info("partitions assigned: %s", parts)
        await self.source.assigned_partitions(parts)
