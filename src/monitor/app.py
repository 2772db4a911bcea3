"""Composition root: builds every part from Settings and runs them.

Every client is entered through one AsyncExitStack; loops run in a TaskGroup.  On SIGTERM or
SIGINT the HTTP server stops, sources stop taking input, the pipeline drains what it holds and
stores it, then everything closes, within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.noise import NoiseControl
from alerts.sla import SlaPolicy
from alerts.tracker import AlertTracker
from ingest.forward import KafkaForwarder
from ingest.kafka import KafkaConfig, KafkaSource, KafkaStats
from ingest.mqtt import MqttConfig, MqttSource
from ingest.raw import RawMessage
from monitor.allocator import fix_mmap_threshold
from monitor.bootstrap import prepare_database, single_node
from monitor.clock import Clock, SystemClock
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.handover import PartitionState, rearm
from monitor.metrics import Metrics
from monitor.node_state import NodeState
from monitor.notify import Notifier, parse_routes
from monitor.operations import Operations
from monitor.pipeline import Pipeline
from monitor.registry import Registry
from monitor.risk_models import RiskModelService
from monitor.risk_monitor import RiskMonitor
from monitor.service import Service
from monitor.store import alerts as alert_store
from monitor.store import catalog, retention, rollups
from monitor.store import noise as noise_store
from monitor.store import rules as rule_store
from monitor.store.db import ensure_database, open_engine
from monitor.store.migrations import uses_timescale
from monitor.store.readings import PartitionKeeper
from monitor.store.seen import StoredReadings
from monitor.store.shadow import ShadowWriter
from monitor.store.writer import StoreWriter
from rules.engine import RuleEngine
from rules.spec import RULES_ADAPTER

log = logging.getLogger("riskmon")


@dataclass
class Runtime:
    settings: Settings
    db: AsyncEngine
    registry: Registry
    engine: RuleEngine
    tracker: AlertTracker
    pipeline: Pipeline
    service: Service
    metrics: Metrics
    clock: Clock
    partitions: PartitionKeeper
    mqtt: MqttSource | None = None
    kafka: KafkaSource | None = None
    forwarder: KafkaForwarder | None = None
    partition_state: PartitionState | None = None
    node_state: NodeState | None = None
    notifier: Notifier | None = None
    risk: RiskMonitor | None = None
    risk_models: RiskModelService | None = None
    operations: Operations | None = None

    @property
    def ops(self) -> Operations:
        """Operator actions (built with the runtime; never None once it is running)."""
        assert self.operations is not None
        return self.operations

    @property
    def role(self) -> str:
        return self.settings.role


@contextlib.asynccontextmanager
async def build_runtime(
    settings: Settings, *, clock: Clock | None = None, metrics: Metrics | None = None
) -> AsyncIterator[Runtime]:
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    fix_mmap_threshold(settings.malloc_mmap_threshold)
    await ensure_database(settings.database_url)
    async with open_engine(settings.database_url) as db, contextlib.AsyncExitStack() as stack:
        await prepare_database(settings, db)
        if settings.role == "all":
            await stack.enter_async_context(single_node(settings.database_url))
        registry = Registry()
        engine = RuleEngine(registry, clock.now())
        tracker = AlertTracker()
        async with db.connect() as conn:
            await catalog.load_registry(conn, registry)
            for spec in await rule_store.load_rules(conn):
                engine.upsert(RULES_ADAPTER.validate_python([spec])[0], clock.now())
            active = await alert_store.load_active(conn)
            waiting = await alert_store.load_waiting(conn)
        node_state, restored = None, None
        if settings.role == "all":  # windows and delays from the last snapshot, then the store
            node_state = NodeState(
                db, registry, engine, tracker, clock, settings.allowed_lateness_s
            )
            restored = await node_state.restore()
        tracker.restore([*active, *waiting])
        rearm(engine, registry, active)
        partitions = PartitionKeeper(enabled=not await uses_timescale(db), copy=settings.store_copy)
        async with db.begin() as conn:
            await partitions.ensure_ahead(conn, clock.now(), settings.partition_days_ahead)
            if partitions.enabled:
                await retention.drop_expired(conn, settings.retention_days, clock.now())
            else:
                await retention.set_policy(conn, settings.retention_days)
        pipeline = Pipeline(
            registry=registry,
            engine=engine,
            tracker=tracker,
            persist=StoreWriter(db, partitions, metrics),
            metrics=metrics,
            clock=clock,
            batch_max=settings.batch_max_readings,
            linger_s=settings.batch_linger_ms / 1000.0,
            queue_max=settings.queue_max_messages,
            max_future_s=settings.max_future_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            sla=SlaPolicy(dict(settings.sla_ack_s), dict(settings.sla_dispose_s)),
        )
        pipeline.record_shadow = ShadowWriter(db, settings.store_copy)
        stored_readings = StoredReadings(db, settings.duplicate_near_s)
        pipeline.already_stored = stored_readings.mask
        engine.restore_watermarks(await stored_readings.newest())
        if node_state is not None and restored is None:
            await node_state.snapshot()  # the state it starts from, before it judges anything
        service = Service(db, registry, engine, pipeline, clock)
        runtime = Runtime(
            settings, db, registry, engine, tracker, pipeline, service, metrics, clock, partitions
        )
        runtime.node_state = node_state
        _attach_sources(runtime)
        client = await stack.enter_async_context(httpx.AsyncClient())
        runtime.notifier = Notifier(
            routes=parse_routes(settings.notify_routes),
            noise=NoiseControl(
                started=clock.now(),
                startup_grace_s=settings.startup_grace_s,
                flap_changes=settings.flap_changes,
                flap_window_s=settings.flap_window_s,
            ),
            db=db,
            registry=registry,
            tracker=tracker,
            clock=clock,
            client=client,
        )
        pipeline.listeners.append(runtime.notifier.enqueue)
        runtime.risk = RiskMonitor(
            db, registry, clock, metrics.site_risk, settings.risk_interval_s,
            notify=runtime.notifier.enqueue_risk, hold_s=settings.risk_hold_s,
        )  # fmt: skip
        pipeline.listeners.append(runtime.risk.on_events)
        runtime.risk_models = RiskModelService(db, runtime.risk)
        await runtime.risk_models.load()
        runtime.operations = Operations(db, pipeline, clock, runtime.notifier.noise)
        async with db.connect() as conn:
            await noise_store.load(conn, runtime.notifier.noise, clock.now())
        log.info(
            "riskmon %s ready: %d sites, %d sensors, %d rules, %d active alerts",
            settings.role,
            len(registry.sites),
            len(registry.sensors),
            len(engine.rules),
            len(active),
        )
        yield runtime


def kafka_config(settings: Settings) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.kafka_topic,
        dlq_topic=settings.kafka_dlq_topic,
        group_id=settings.kafka_group_id,
        client_id=settings.kafka_client_id,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        high_watermark=settings.kafka_pause_at,
        low_watermark=settings.kafka_resume_at,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_ca_file=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None,
    )


def _attach_sources(rt: Runtime) -> None:
    """Wire transports by role: all = everything into the local pipeline; gateway = MQTT and
    HTTP into Kafka; processor = Kafka into the pipeline, with state following partitions."""
    settings, metrics = rt.settings, rt.metrics
    if settings.role in ("gateway", "processor") and not settings.kafka_bootstrap_servers:
        raise ConfigError(f"role {settings.role} needs RISKMON_KAFKA_BOOTSTRAP_SERVERS")
    kcfg = kafka_config(settings)
    submit = rt.pipeline.submit
    if settings.role == "gateway":
        forwarder = KafkaForwarder(
            kcfg,
            lambda sensor: s.site if (s := rt.registry.sensors.get(sensor)) else None,
            lambda source, n: metrics.kafka_forwarded.labels(source).inc(n),
        )
        rt.forwarder = forwarder

        async def forward(msg: RawMessage) -> None:
            await forwarder.forward(msg)

        submit = forward
    hp = settings.mqtt_host_port
    if hp is not None and settings.role != "processor":
        rt.mqtt = MqttSource(
            MqttConfig(
                hp[0],
                hp[1],
                settings.mqtt_client_id,
                settings.mqtt_topic,
                settings.mqtt_username,
                settings.mqtt_password,
                tls=settings.mqtt_tls or settings.mqtt_url.startswith("mqtts://"),
                ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
                max_intake=settings.mqtt_max_intake,
                share_group=settings.mqtt_share_group,
            ),
            submit,
            lambda up: metrics.source_up.labels("mqtt").set(1 if up else 0),
        )
        metrics.mqtt_held.set_function(rt.mqtt.held)
    if settings.kafka_bootstrap_servers and settings.role != "gateway":
        stats = KafkaStats(
            on_commit=metrics.kafka_commits.inc,
            on_dlq=lambda reason: metrics.kafka_dlq.labels(reason).inc(),
            on_rebalance=metrics.kafka_rebalances.inc,
            on_pause=metrics.kafka_pauses.inc,
            on_lag=lambda p, lag: metrics.kafka_lag.labels(str(p)).set(lag),
        )
        kafka = KafkaSource(kcfg, rt.pipeline.submit, rt.pipeline.queue.qsize, stats=stats)
        rt.kafka = kafka
        if settings.role == "processor":

            def partition_count() -> int:
                if not kafka.partition_total:
                    raise RuntimeError("partition count not known before the first assignment")
                return kafka.partition_total

            rt.partition_state = PartitionState(
                db=rt.db,
                registry=rt.registry,
                engine=rt.engine,
                tracker=rt.tracker,
                pipeline=rt.pipeline,
                metrics=metrics,
                clock=rt.clock,
                topic=kcfg.topic,
                partition_count=partition_count,
                processed_offsets=kafka.processed_offsets,
            )
            kafka.hooks = rt.partition_state


async def _ticker(runtime: Runtime) -> None:
    settings = runtime.settings
    upkept = runtime.clock.now()
    while True:
        await asyncio.sleep(settings.tick_interval_s)
        try:
            await runtime.pipeline.tick()
            await runtime.service.apply_due()
            now = runtime.clock.now()
            async with runtime.db.begin() as conn:
                await runtime.partitions.ensure_ahead(conn, now, settings.partition_days_ahead)
                if runtime.partitions.enabled and now - upkept >= 3600:
                    await retention.drop_expired(conn, settings.retention_days, now)
                    upkept = now
        except Exception:
            log.exception("timer tick failed; will retry")


async def _rollup_ticker(runtime: Runtime) -> None:
    """Plain PostgreSQL: the rollups catch up with the stored readings on their own timer
    (``store.rollups``), outside the write of readings."""
    settings, partitions = runtime.settings, runtime.partitions
    while True:
        await asyncio.sleep(settings.rollup_interval_s)
        upto = rollups.due(partitions.newest, settings.rollup_lag_s)
        if upto is None:
            continue
        try:
            await rollups.catch_up(runtime.db, upto)
        except Exception as err:
            log.error("rollups did not catch up (%s: %s); will retry", type(err).__name__, err)


async def _risk_ticker(risk: RiskMonitor, interval_s: float) -> None:
    """Site risk on its own timer: a slow reassessment never delays the alert timers (SLA
    escalation, data interruption), and a failing one never stops them."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await risk.tick()
        except Exception as err:
            log.error("risk reassessment failed (%s: %s); will retry", type(err).__name__, err)


async def run_service(runtime: Runtime, server: uvicorn.Server) -> None:
    """Run sources, pipeline, timers and the HTTP server until the server is told to exit."""
    loop = asyncio.get_running_loop()

    def request_stop(*_: object) -> None:
        loop.call_soon_threadsafe(setattr, server, "should_exit", True)

    # uvicorn restores these handlers after it stops and re-raises the signal to them.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        await _run_until_stopped(runtime, server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("riskmon stopped")


async def _mqtt_after_kafka(rt: Runtime) -> None:
    """Gateway: take MQTT input only once Kafka answers, so nothing is taken and dropped."""
    assert rt.forwarder is not None and rt.mqtt is not None
    while not rt.forwarder.ready:
        await asyncio.sleep(0.2)
    await rt.mqtt.run()


async def _close(step: Awaitable[None], limit_s: float, what: str) -> None:
    """A shutdown step that may fail (the broker already gone) without a traceback.  A
    cancellation from inside the client (aiokafka cancels its own fetch tasks) is not ours
    unless this task is itself being cancelled."""
    try:
        await asyncio.wait_for(step, limit_s)
    except TimeoutError:
        log.error("%s took over %.0fs; stopping anyway", what, limit_s)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("%s was interrupted (the broker went away); stopping anyway", what)
    except Exception as err:
        log.warning("%s failed (%s: %s); stopping anyway", what, type(err).__name__, err)


async def _run_until_stopped(rt: Runtime, server: uvicorn.Server) -> None:
    timeout = rt.settings.shutdown_timeout_s
    async with asyncio.TaskGroup() as tg:
        sources: list[asyncio.Task[None]] = []
        worker = None
        if rt.forwarder is not None:
            sources.append(tg.create_task(rt.forwarder.run(), name="forwarder"))
            if rt.mqtt is not None:
                sources.insert(0, tg.create_task(_mqtt_after_kafka(rt), name="mqtt"))
        else:
            worker = tg.create_task(rt.pipeline.run(), name="pipeline")
            sources.append(tg.create_task(_ticker(rt), name="ticker"))
            if rt.partitions.enabled:
                sources.append(tg.create_task(_rollup_ticker(rt), name="rollups"))
            if rt.risk is not None:
                interval = rt.settings.tick_interval_s
                sources.append(tg.create_task(_risk_ticker(rt.risk, interval), name="risk"))
            if rt.notifier is not None:
                sources.append(tg.create_task(rt.notifier.run(), name="notifier"))
            if rt.mqtt is not None:
                sources.append(tg.create_task(rt.mqtt.run(), name="mqtt"))
            if rt.kafka is not None:
                sources.append(tg.create_task(rt.kafka.run(), name="kafka"))
            if rt.node_state is not None:
                sources.append(
                    tg.create_task(
                        rt.node_state.run_periodic(rt.pipeline, rt.settings.snapshot_interval_s),
                        name="node snapshots",
                    )
                )
            if rt.partition_state is not None:
                sources.append(
                    tg.create_task(
                        rt.partition_state.run_periodic(rt.settings.snapshot_interval_s),
                        name="snapshots",
                    )
                )
        await server.serve()
        log.info("stopping: sources first, then draining the pipeline")
        if rt.kafka is not None:
            rt.kafka.stop_fetching()
        if rt.forwarder is not None:
            await asyncio.sleep(0.2)  # let in-flight Kafka acknowledgements reach MQTT
        for task in sources:
            task.cancel()
        if worker is not None:
            try:
                await asyncio.wait_for(rt.pipeline.idle(), timeout)
            except TimeoutError:
                log.error("pipeline did not drain within %.0fs", timeout)
            if rt.kafka is not None:
                await _close(rt.kafka.close(), timeout, "closing the Kafka consumer")
            rt.pipeline.stop()
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except TimeoutError:
                worker.cancel()
            if rt.node_state is not None:  # drained: the state matches what is stored
                await _close(rt.node_state.snapshot(), timeout, "the node state snapshot")
