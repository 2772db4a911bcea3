"""Operator actions: the one home of every change people make to alerts and their noise.

Acknowledge, disposing, dispose, review, comment, assign, shelve, and silences all go through
``Operations``.  Each takes the pipeline lock (so it is ordered with the readings being
judged), computes the transition with the pure functions of ``alerts.workflow``, writes it to
the store, and only then makes the new value current in memory and publishes the event.  A
failed write therefore leaves the store and memory as they were, and the caller gets the error.
No API route changes in-memory state itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts import workflow
from alerts.model import Alert, AlertEvent, ReasonCode
from alerts.noise import NoiseControl, Shelf, Silence
from monitor.clock import Clock
from monitor.errors import NotFoundError
from monitor.pipeline import Pipeline
from monitor.store import alerts as alert_store
from monitor.store import noise as noise_store

Action = Callable[[Alert, float], AlertEvent]


class Operations:
    def __init__(
        self, db: AsyncEngine, pipeline: Pipeline, clock: Clock, noise: NoiseControl | None
    ) -> None:
        self.db = db
        self.pipeline = pipeline
        self.clock = clock
        self.noise = noise

    async def _current(self, alert_id: str) -> Alert:
        """The alert as it is now: the tracker's copy when it holds one, else the store's.
        The caller holds the pipeline lock, so the two agree."""
        held = self.pipeline.tracker.get(alert_id)
        if held is not None:
            return held
        async with self.db.connect() as conn:
            stored = await alert_store.get_alert(conn, alert_id)
        if stored is None:
            raise NotFoundError("alert", alert_id)
        return stored

    async def act(self, alert_id: str, action: Action) -> Alert:
        """Apply one transition: compute, store, then make it current and publish it."""
        async with self.pipeline.exclusive():
            event = action(await self._current(alert_id), self.clock.now())
            async with self.db.begin() as conn:
                await alert_store.write_events(conn, [event])
            self.pipeline.tracker.apply(event.alert)
            self.pipeline.publish([event])
        return event.alert

    async def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self.act(alert_id, lambda a, now: workflow.acknowledge(a, actor, now, note))

    async def start_disposal(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self.act(alert_id, lambda a, now: workflow.start_disposal(a, actor, now, note))

    async def dispose(
        self,
        alert_id: str,
        actor: str,
        reason: ReasonCode,
        note: str,
        *,
        force: bool = False,
        force_reason: str | None = None,
    ) -> Alert:
        return await self.act(
            alert_id,
            lambda a, now: workflow.dispose(
                a, actor, reason, note, now, force=force, force_reason=force_reason
            ),
        )

    async def review(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self.act(alert_id, lambda a, now: workflow.review(a, actor, now, note))

    async def comment(self, alert_id: str, actor: str, text: str) -> Alert:
        return await self.act(alert_id, lambda a, now: workflow.comment(a, actor, now, text))

    async def assign(self, alert_id: str, actor: str, assignee: str) -> Alert:
        return await self.act(alert_id, lambda a, now: workflow.assign(a, actor, now, assignee))

    def _noise(self) -> NoiseControl:
        if self.noise is None:
            raise NotFoundError("noise control", "this node sends no notifications")
        return self.noise

    async def shelve(self, alert_id: str, actor: str, until: float, reason: str) -> Shelf:
        """Hold back an alert's notifications until ``until``; recorded in its history."""
        noise = self._noise()
        async with self.pipeline.exclusive():
            alert = await self._current(alert_id)
            event = workflow.shelve(alert, actor, self.clock.now(), until, reason)
            shelf = Shelf(alert_id, until, reason, actor)
            async with self.db.begin() as conn:
                await noise_store.save_shelf(conn, shelf)
                await alert_store.write_events(conn, [event])
            noise.shelves[alert_id] = shelf
            self.pipeline.publish([event])
        return shelf

    async def add_silence(self, silence: Silence) -> Silence:
        noise = self._noise()
        async with self.pipeline.exclusive():
            async with self.db.begin() as conn:
                await noise_store.save_silence(conn, silence)
            noise.silences[silence.id] = silence
        return silence

    async def delete_silence(self, silence_id: str) -> Silence:
        noise = self._noise()
        async with self.pipeline.exclusive():
            silence = noise.silences.get(silence_id)
            if silence is None:
                raise NotFoundError("silence", silence_id)
            async with self.db.begin() as conn:
                await noise_store.delete_silence(conn, silence_id)
            del noise.silences[silence_id]
        return silence

    def silences(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self._noise().silences.values()]
