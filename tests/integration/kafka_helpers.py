"""Producing and reading test streams on the Kafka-protocol broker."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def produce(
    bootstrap: str, topic: str, records: list[tuple[str | None, Any]], *, raw: bool = False
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value if raw else orjson.dumps(value), key=key.encode() if key else None
            )
            for key, value in records
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expect: int, timeout_ms: int = 15_000) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out
