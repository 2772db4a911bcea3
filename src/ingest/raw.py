"""Raw messages as they come off a transport, before decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOPIC_PREFIX = "riskmon/v1"
READINGS_TOPIC_FILTER = f"{TOPIC_PREFIX}/+/+/readings"


def readings_topic(tenant: str, site: str) -> str:
    return f"{TOPIC_PREFIX}/{tenant}/{site}/readings"


def parse_topic(topic: str) -> tuple[str, str] | None:
    """``riskmon/v1/{tenant}/{site}/readings`` -> (tenant, site); None if it does not match."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[4] != "readings":
        return None
    if not parts[2] or not parts[3]:
        return None
    return parts[2], parts[3]


@dataclass(slots=True)
class RawMessage:
    """One transport message.  ``done`` is called with the outcome once the message is safely
    stored (the checkpoint); transports acknowledge the message there."""

    payload: bytes
    source: str
    received: float
    topic: str | None = None
    tenant: str | None = None
    site: str | None = None
    done: Callable[[Any], object] | None = field(default=None, repr=False)
    backfill: bool = False  # history: judged retrospectively, live state untouched
