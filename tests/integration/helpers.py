"""Helpers for integration tests: publish over MQTT, poll the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import httpx
import orjson


async def publish(port: int, topic: str, payload: Any, *, raw: bool = False) -> None:
    body = payload if raw else orjson.dumps(payload)
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, body, qos=1)


async def wait_for(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 5.0, interval: float = 0.05
) -> Any:
    """Poll ``probe`` until it returns something truthy; return it (or fail at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def alerts(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/alerts", params=params)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()
    return data


def now() -> float:
    return time.time()
