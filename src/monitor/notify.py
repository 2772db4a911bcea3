"""Notifications: routing by tenant, site and level to a generic JSON webhook or the WeCom
(企业微信) and DingTalk (钉钉) group-robot formats; retry with backoff for recoverable
failures (connection errors, 5xx, 429), none for permanent ones (other 4xx); every attempt
outcome and every suppression is written to the notification log."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.model import AlertEvent, alert_view
from alerts.noise import NoiseControl
from alerts.risk import NAMES, SiteRisk
from alerts.tracker import AlertTracker
from monitor.clock import Clock, to_datetime
from monitor.registry import Registry

log = logging.getLogger(__name__)
COLOURS = {1: "红色 red", 2: "橙色 orange", 3: "黄色 yellow", 4: "蓝色 blue"}


class Route(BaseModel):
    """Send events of alerts (and, with ``risk`` in ``kinds``, site risk changes) matching
    tenant, site and district with level <= ``max_level`` to a channel."""

    channel: Literal["webhook", "wecom", "dingtalk"]
    url: str
    tenant: str | None = None
    site: str | None = None
    district: str | None = None
    max_level: int = Field(default=4, ge=1, le=4)
    kinds: tuple[Literal["alert", "risk"], ...] = ("alert",)

    def matches(
        self, kind: str, tenant: str | None, site: str, district: str | None, level: int
    ) -> bool:
        return (
            kind in self.kinds
            and self.tenant in (None, tenant)
            and self.site in (None, site)
            and self.district in (None, district)
            and level <= self.max_level
        )


def text_of(event: AlertEvent) -> str:
    a = event.alert
    where = a.sensor or a.site
    return (
        f"[{COLOURS.get(int(a.level), a.level)}] {event.kind.value}: {a.rule} at {where} "
        f"(site {a.site}), value {a.value}, opened {to_datetime(a.opened_at).isoformat()}"
    )


def _robot(channel: str, title: str, body: str) -> dict[str, Any] | None:
    if channel == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": body}}
    if channel == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": body}}
    return None


def render(channel: str, event: AlertEvent) -> dict[str, Any]:
    a = event.alert
    return _robot(channel, f"riskmon {a.rule}", text_of(event)) or {
        "event": event.kind.value,
        "alert": alert_view(a),
        "detail": event.detail,
        "text": text_of(event),
    }


def risk_text(risk: SiteRisk, was: int) -> str:
    why = "; ".join(f.words for f in risk.factors if f.levels or f.name == "warning")
    return f"[risk {NAMES[risk.level]}] site {risk.site}: was {NAMES[was]}, now {risk.name} ({why})"


def render_risk(channel: str, risk: SiteRisk, district: str | None, was: int) -> dict[str, Any]:
    body = risk_text(risk, was)
    return _robot(channel, f"riskmon risk {risk.site}", body) or {
        "event": "risk_changed",
        "risk": {**risk.as_dict(), "district": district},
        "previous_level": was,
        "text": body,
    }


@dataclass(frozen=True)
class RiskChange:
    risk: SiteRisk
    district: str | None
    was: int  # the level told before


@dataclass
class Notifier:
    routes: list[Route]
    noise: NoiseControl
    db: AsyncEngine
    registry: Registry
    tracker: AlertTracker
    clock: Clock
    client: httpx.AsyncClient
    max_attempts: int = 4
    backoff_s: float = 0.2

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[AlertEvent | RiskChange] = asyncio.Queue()

    def enqueue(self, events: list[AlertEvent]) -> None:
        for event in events:
            self.queue.put_nowait(event)

    def enqueue_risk(self, risk: SiteRisk, district: str | None, was: int) -> None:
        """A site's risk level changed and held (``RiskMonitor``): tell the risk routes."""
        self.queue.put_nowait(RiskChange(risk, district, was))

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                if isinstance(item, RiskChange):
                    await self.handle_risk(item)
                else:
                    await self.handle(item)
            except Exception:
                subject = item.risk.site if isinstance(item, RiskChange) else item.alert.id
                log.exception("notification of %s failed", subject)

    def _tenant(self, site: str) -> str | None:
        found = self.registry.sites.get(site)
        return found.tenant if found else None

    def _kind(self, sensor: str | None) -> str | None:
        found = self.registry.sensors.get(sensor or "")
        return found.kind if found else None

    async def handle(self, event: AlertEvent) -> None:
        now = self.clock.now()
        notify, reason = self.noise.decide(
            event, now, list(self.tracker.active.values()), self._tenant, self._kind
        )
        if not notify:
            if reason != "not a notified kind":
                await self._log(
                    event.alert.id, event.kind.value, None, "suppressed", 0, None, reason
                )
            return
        site = self.registry.sites.get(event.alert.site)
        tenant, district = (site.tenant, site.district) if site else (None, None)
        for route in self.routes:
            if route.matches("alert", tenant, event.alert.site, district, int(event.alert.level)):
                payload = render(route.channel, event)
                await self._deliver(route, payload, event.alert.id, event.kind.value)

    async def handle_risk(self, change: RiskChange) -> None:
        risk = change.risk
        for route in self.routes:
            if route.matches("risk", risk.tenant, risk.site, change.district, risk.level):
                payload = render_risk(route.channel, risk, change.district, change.was)
                await self._deliver(route, payload, f"risk:{risk.site}", "risk_changed")

    async def _deliver(
        self, route: Route, payload: dict[str, Any], subject: str, kind: str
    ) -> None:
        """``subject``: the alert id (or ``risk:<site>``), ``kind`` the event, for the log."""
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self.client.post(route.url, json=payload, timeout=5.0)
            except httpx.TransportError as err:
                error = f"{err.__class__.__name__}: {err}"
            else:
                if response.status_code < 300:
                    await self._log(subject, kind, route, "sent", attempt, None, None)
                    return
                error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    await self._log(subject, kind, route, "failed", attempt, error, "permanent")
                    return
            if attempt < self.max_attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        await self._log(subject, kind, route, "failed", self.max_attempts, error, "gave up")

    async def _log(
        self,
        subject: str,
        kind: str,
        route: Route | None,
        status: str,
        attempts: int,
        error: str | None,
        reason: str | None,
    ) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                text("""INSERT INTO notifications (alert_id, event, channel, url, status,
                          attempts, error, reason, at)
                        VALUES (:a, :e, :c, :u, :s, :n, :err, :r, :at)"""),
                {
                    "a": subject,
                    "e": kind,
                    "c": route.channel if route else None,
                    "u": route.url if route else None,
                    "s": status,
                    "n": attempts,
                    "err": error,
                    "r": reason,
                    "at": to_datetime(self.clock.now()),
                },
            )


def parse_routes(raw: list[dict[str, Any]] | str) -> list[Route]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return [Route.model_validate(r) for r in data]
