"""State follows the partition (processor role).

Sites map to Kafka partitions by the producer's default partitioner (murmur2 of the site id,
as in the Java client), so a processor can tell which sensors' state it owns.  When partitions
are revoked it waits for the pipeline to store what it holds, snapshots the rule state of their
sensors with the next offset that state corresponds to, and forgets them.  When partitions are
assigned it restores the last snapshot and asks the source to replay from the snapshot's offset
(replayed writes are idempotent: readings by (sensor, ts), alerts by deterministic ids, events
by a unique key), and loads the partitions' active alerts from the store.  Partitions
without a snapshot are snapshotted at once, at the offset they start from (the state is that of
a new owner: empty windows, the store's watermarks, rules re-armed from its active alerts), so
a processor killed before its first periodic snapshot is replayed from that state instead of
starting its windows empty.  Snapshots are also taken periodically.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Set

import numpy as np
from aiokafka.partitioner import murmur2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.holdback import wanted_level
from alerts.model import Alert, alert_from_dict, alert_to_dict, with_people
from alerts.tracker import AlertTracker
from monitor.clock import Clock
from monitor.metrics import Metrics
from monitor.pipeline import Pipeline
from monitor.registry import Registry
from monitor.store import alerts as alert_store
from monitor.store.seen import StoredReadings
from monitor.store.snapshots import save_snapshot
from rules.engine import RuleEngine
from rules.statecodec import encode_state

log = logging.getLogger(__name__)


def partition_of(site: str, partitions: int) -> int:
    return int(murmur2(site.encode()) & 0x7FFFFFFF) % partitions


def to_restore(
    held: list[Alert], active: list[Alert], waiting: list[Alert], people: dict[str, Alert]
) -> list[Alert]:
    """The alerts a new owner's tracker starts from.  Of a site with a snapshot: the open
    alerts as they were at the snapshot (``held``), since the replay that follows re-creates
    what came after, with the same ids, and the store's version of such an alert (cleared
    since, say) is ahead of the replayed state: taking it would make the replay record
    transitions from a level the alert had not reached yet.  What people did to them since
    (``people``: their stored versions, by id) is taken from the store, so a worse level in
    the replay opens a new alert after an early close, as it did live.  Of the sites without
    a snapshot: the store's ``active`` alerts.  Of every site: the store's cleared
    unacknowledged alerts (``waiting``) not held."""
    ids = {a.id for a in held}
    return [
        *(with_people(a, people[a.id]) if a.id in people else a for a in held),
        *active,
        *(a for a in waiting if a.id not in ids),
    ]


def take_over(tracker: AlertTracker, sites: Iterable[str], alerts: list[Alert]) -> None:
    """The tracker holds exactly ``alerts`` (``to_restore``) of the sites taken over.  What it
    held of them before (every active alert of the store, loaded at start-up, or those of an
    earlier ownership) goes: an alert opened after the snapshot would be met by the replay at
    its stored level, and the replay would record transitions from it."""
    tracker.drop_sites(set(sites))
    tracker.restore(alerts)


def rearm(
    engine: RuleEngine, registry: Registry, active: Iterable[Alert], skip: Set[int] = frozenset()
) -> None:
    """Re-arm the rules from the store's active alerts, at the level each rule gave (a red
    held back is re-armed at red), except on the sensors of ``skip`` (restored from a
    snapshot)."""
    for alert in active:
        level = int(wanted_level(alert))
        if alert.sensor is None:
            engine.restore_subject(alert.rule, alert.fingerprint.split("|", 1)[1], level)
            continue
        key = registry.keys.get(alert.sensor)
        if key is not None and key not in skip:
            engine.restore(alert.rule, key, level, alert.last_ts)


class PartitionState:
    def __init__(
        self,
        *,
        db: AsyncEngine,
        registry: Registry,
        engine: RuleEngine,
        tracker: AlertTracker,
        pipeline: Pipeline,
        metrics: Metrics,
        clock: Clock,
        topic: str,
        partition_count: Callable[[], int],
        processed_offsets: Callable[[list[int]], dict[int, int]],
    ) -> None:
        self.db = db
        self.registry = registry
        self.engine = engine
        self.tracker = tracker
        self.pipeline = pipeline
        self.metrics = metrics
        self.clock = clock
        self.topic = topic
        self.partition_count = partition_count
        self.processed_offsets = processed_offsets
        self.owned: set[int] = set()
        self._snapshot_offsets: dict[int, int] = {}
        engine.owned = np.zeros(registry.capacity, bool)

    def members(self, partitions: set[int] | list[int]) -> tuple[np.ndarray, list[str]]:
        """Sensor keys and site ids that hash to the given partitions."""
        n = self.partition_count()
        wanted = set(partitions)
        sites = [s for s in self.registry.sites if partition_of(s, n) in wanted]
        site_set = set(sites)
        keys = [k for k, sensor in self.registry.by_key.items() if sensor.site in site_set]
        return np.array(sorted(keys), np.int64), sites

    def _set_owned(self) -> None:
        keys, _ = self.members(self.owned)
        owned = np.zeros(self.registry.capacity, bool)
        owned[keys] = True
        self.engine.owned = owned

    async def on_revoked(self, partitions: list[int]) -> None:
        await self.pipeline.idle()
        async with self.pipeline.locked():
            await self._snapshot(partitions)
            keys, sites = self.members(partitions)
            self.engine.reset(keys, self.clock.now())
            self.tracker.drop_sites(set(sites))
            self.owned -= set(partitions)
            self._set_owned()

    async def on_assigned(self, partitions: list[int], starts: dict[int, int]) -> dict[int, int]:
        """Restore the partitions' state; the offsets to replay from, of those with a snapshot.
        ``starts``: where the others start (their committed offset, or the log's start)."""
        started = time.perf_counter()
        replay: dict[int, int] = {}
        async with self.pipeline.locked():
            now = self.clock.now()
            keys, sites = self.members(partitions)
            self.engine.reset(keys, now)
            async with self.db.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT partition, next_offset, state, alerts FROM state_snapshots "
                        "WHERE topic = :t AND partition = ANY(:p)"
                    ),
                    {"t": self.topic, "p": list(partitions)},
                )
                snapshots = {r.partition: (r.next_offset, bytes(r.state), r.alerts) for r in rows}
                active = await alert_store.load_active(conn, sites)
                waiting = await alert_store.load_waiting(conn, sites)
            restored: set[int] = set()
            snapshot_sites: set[str] = set()
            held: list[Alert] = []
            for partition, (offset, state, alerts) in snapshots.items():
                self.engine.import_state(state, now)
                held += [alert_from_dict(a) for a in alerts]
                replay[partition] = offset
                restored |= set(self.members([partition])[0].tolist())
                snapshot_sites |= set(self.members([partition])[1])
            async with self.db.connect() as conn:
                people = {a.id: a for a in await alert_store.load_by_id(conn, [a.id for a in held])}
            active = [a for a in active if a.site not in snapshot_sites]
            take_over(self.tracker, sites, to_restore(held, active, waiting, people))
            # sensors without a snapshot: what the store holds was judged by the last owner
            fresh = sorted(set(keys.tolist()) - restored)
            self.engine.restore_watermarks(await StoredReadings(self.db).newest(fresh))
            rearm(self.engine, self.registry, active, skip=restored)
            self.owned |= set(partitions)
            self._set_owned()
            first = {p: off for p, off in starts.items() if p not in snapshots}
            await self._snapshot(sorted(first), first)  # where a replay of them starts
        self.metrics.restore_duration.observe(time.perf_counter() - started)
        log.info(
            "restored partitions %s: %d snapshots, %d active alerts",
            partitions,
            len(snapshots),
            len(active),
        )
        return replay

    async def snapshot_all(self) -> None:
        async with self.pipeline.locked():
            await self._snapshot(sorted(self.owned))

    async def _snapshot(self, partitions: list[int], at: dict[int, int] | None = None) -> None:
        """Write the state of the partitions' sensors with the offsets it corresponds to
        (``at``, or the processed offsets).  The caller holds the pipeline lock, so the state
        matches them."""
        offsets = self.processed_offsets(partitions) if at is None else at
        if not offsets:
            return
        started = time.perf_counter()
        async with self.db.begin() as conn:
            for partition, offset in offsets.items():
                if self._snapshot_offsets.get(partition) == offset:
                    continue  # nothing new since the last snapshot
                keys, site_list = self.members([partition])
                sites = set(site_list)
                open_alerts = [
                    alert_to_dict(a) for a in self.tracker.active.values() if a.site in sites
                ]
                state = await asyncio.to_thread(encode_state, self.engine.export_arrays(keys))
                await save_snapshot(
                    conn, self.topic, partition, offset, int(keys.shape[0]), state, open_alerts
                )
                self._snapshot_offsets[partition] = offset
        self.metrics.snapshot_duration.observe(time.perf_counter() - started)

    async def run_periodic(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.snapshot_all()
            except Exception:
                log.exception("periodic snapshot failed; will retry")
