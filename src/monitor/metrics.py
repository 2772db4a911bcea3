"""Prometheus metrics, registered on an injected CollectorRegistry.

Names follow ``riskmon_<subsystem>_<noun>_<unit>``; no per-sensor labels (cardinality).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.readings_accepted = Counter(
            "riskmon_ingest_readings_accepted", "Readings accepted", ["source"], registry=r
        )
        self.readings_rejected = Counter(
            "riskmon_ingest_readings_rejected", "Input rejected", ["source", "reason"], registry=r
        )
        self.shadow_scored = Counter(
            "riskmon_anomaly_shadow_scored", "Readings scored by shadow-mode anomaly rules",
            ["rule"], registry=r,
        )  # fmt: skip
        self.shadow_would_alert = Counter(
            "riskmon_anomaly_shadow_would_alert",
            "Alerts that shadow-mode anomaly rules would have raised", ["rule", "level"],
            registry=r,
        )  # fmt: skip
        self.messages = Counter(
            "riskmon_ingest_messages", "Transport messages received", ["source"], registry=r
        )
        self.event_to_alert = Histogram(
            "riskmon_alerts_event_to_alert_seconds",
            "From the arrival of the reading that caused an alert change to the change stored",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.alerts_opened = Counter(
            "riskmon_alerts_opened", "Alerts opened", ["level", "category"], registry=r
        )
        self.alert_events = Counter("riskmon_alerts_events", "Alert events", ["kind"], registry=r)
        self.level_reached = Counter(
            "riskmon_alerts_level_reached",
            "Levels alerts reached: every opening, escalation and de-escalation at its new level",
            ["level", "category"],
            registry=r,
        )
        self.alerts_active = Gauge(
            "riskmon_alerts_active",
            "Alerts whose condition holds, by level (not the ones suppressed by design)",
            ["level"],
            registry=r,
        )
        self.alerts_waiting = Gauge(
            "riskmon_alerts_waiting",
            "Alerts nobody has acknowledged or closed, active or returned to normal, by level",
            ["level"],
            registry=r,
        )
        self.time_to_ack = Histogram(
            "riskmon_alerts_time_to_acknowledge_seconds",
            "Raised to acknowledged (MTTA)",
            ["level"],
            buckets=(30, 60, 300, 900, 1800, 3600, 7200, 86400),
            registry=r,
        )
        self.time_to_dispose = Histogram(
            "riskmon_alerts_time_to_dispose_seconds",
            "Raised to closed (MTTR)",
            ["level"],
            buckets=(60, 300, 1800, 3600, 7200, 28800, 86400, 604800),
            registry=r,
        )
        self.recent_alerts = Gauge(
            "riskmon_alerts_raised_last_10m",
            "Alerts raised in the last 10 minutes (a flood is more than 10)",
            registry=r,
        )
        self.stale_alerts = Gauge(
            "riskmon_alerts_stale", "Alerts waiting for people for more than 24 h", registry=r
        )
        self.site_risk = Gauge(
            "riskmon_sites_at_risk_level",
            "Sites per risk level (1 red .. 4 blue) and district ('' when none)",
            ["level", "district"],
            registry=r,
        )
        self.flush_duration = Histogram(
            "riskmon_store_flush_duration_seconds",
            "Store flush duration",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_readings = Histogram(
            "riskmon_pipeline_batch_readings",
            "Readings per pipeline batch",
            buckets=(1, 10, 100, 1000, 5000, 20000, 100000),
            registry=r,
        )
        self.queue_depth = Gauge(
            "riskmon_pipeline_queue_messages", "Messages waiting for the pipeline", registry=r
        )
        self.source_up = Gauge(
            "riskmon_ingest_source_up", "1 when a source is connected", ["source"], registry=r
        )
        self.mqtt_held = Gauge(
            "riskmon_mqtt_intake_messages",
            "MQTT messages held: taken from the broker and not yet stored (bounded)",
            registry=r,
        )
        self.kafka_lag = Gauge(
            "riskmon_kafka_consumer_lag_messages", "Consumer lag", ["partition"], registry=r
        )
        self.kafka_commits = Counter("riskmon_kafka_commits", "Offset commits", registry=r)
        self.kafka_dlq = Counter(
            "riskmon_kafka_dead_letters", "Records sent to the DLQ", ["reason"], registry=r
        )
        self.kafka_pauses = Counter(
            "riskmon_kafka_pauses",
            "Times the source paused its partitions (backpressure)",
            registry=r,
        )
        self.kafka_rebalances = Counter(
            "riskmon_kafka_rebalances", "Partition revocations seen", registry=r
        )
        self.kafka_forwarded = Counter(
            "riskmon_gateway_forwarded_records",
            "Records produced by the gateway",
            ["source"],
            registry=r,
        )
        self.snapshot_duration = Histogram(
            "riskmon_state_snapshot_duration_seconds",
            "Partition state snapshot",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.restore_duration = Histogram(
            "riskmon_state_restore_duration_seconds",
            "Partition state restore",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "riskmon_api_sign_in_failures",
            "Refused sign-ins: missing or unknown token, or rate-limited",
            ["reason"],
            registry=r,
        )
        self.duplicates_dropped = Counter(
            "riskmon_pipeline_duplicates_dropped",
            "Readings the store already held (replays, redeliveries, resends): not judged again",
            registry=r,
        )
        self.store_failures = Counter(
            "riskmon_store_write_failures",
            "Failed attempts to store a batch (retried with the same readings and events)",
            registry=r,
        )
        self.store_failing = Gauge(
            "riskmon_store_failing", "1 while a batch is waiting for the store", registry=r
        )
        self.errors = Counter(
            "riskmon_pipeline_errors",
            "Batches that failed and were retried",
            ["stage"],
            registry=r,
        )
