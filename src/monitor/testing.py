"""Test doubles and helpers shipped with riskmon (ARCHITECTURE.md §5.7).

- ``ListPersist``: a persist step that records what the pipeline would store.
- ``running_service``: the real service (HTTP, MQTT, pipeline) in this event loop, on a free
  port, stopped on exit.
- ``temporary_database``: a fresh database on a server, dropped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from alerts.model import AlertEvent
from monitor.app import Runtime, build_runtime, run_service
from monitor.clock import Clock
from monitor.config import Settings
from monitor.devservices import free_port, temporary_database
from monitor.model import ReadingBatch, Reject


@dataclass
class ListPersist:
    batches: list[ReadingBatch] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)

    async def __call__(
        self, batch: ReadingBatch, rejects: list[Reject], events: list[AlertEvent]
    ) -> None:
        self.batches.append(batch)
        self.rejects.extend(rejects)
        self.events.extend(events)


__all__ = ["ListPersist", "RunningService", "running_service", "temporary_database"]

TEST_ADMIN_TOKEN = "test-admin-token"


@dataclass
class RunningService:
    runtime: Runtime
    base_url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client of the API: with the admin token, another token, or none ("")."""
        token = self.runtime.settings.admin_token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, *, clock: Clock | None = None, port: int | None = None
) -> AsyncIterator[RunningService]:
    """The whole service in this process on ``port`` (a free one by default; pass the port of
    an earlier run to restart "the same" service under open clients)."""
    port = port or free_port()
    update: dict[str, Any] = {"http_port": port, "http_host": "127.0.0.1"}
    if not settings.admin_token and not settings.tokens:
        update["admin_token"] = TEST_ADMIN_TOKEN
    settings = settings.model_copy(update=update)
    async with build_runtime(settings, clock=clock) as runtime:
        from monitor.api.app import http_server

        server = http_server(runtime, "127.0.0.1", port)
        task = asyncio.create_task(run_service(runtime, server))
        for _ in range(200):
            if server.started or task.done():  # its own socket, not whatever answers there
                break
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        if runtime.mqtt is not None:
            for _ in range(100):
                if runtime.mqtt.connected:
                    break
                await asyncio.sleep(0.05)
        try:
            yield RunningService(runtime, f"http://127.0.0.1:{port}", server, task)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)
