"""Normalizer: decoded readings -> columnar ``ReadingBatch`` plus rejects.  Pure.

Per-item Python is limited to pulling fields out of the JSON objects; every check that can be
done over the whole batch (finite values, timestamp range, site membership) is vectorized.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np

from ingest.decode import DecodeFailure, decode_payload
from ingest.raw import RawMessage
from monitor.model import ReadingBatch, Reject
from monitor.registry import Registry

FUTURE_TOLERANCE_S = 300.0
MIN_EPOCH_S = 946_684_800.0  # 2000-01-01: anything older is a broken clock, not history
MS_THRESHOLD = 1e11  # numbers above this are epoch milliseconds
RAW_LIMIT = 2000


def _number(raw: int | float) -> float:
    """A JSON number as a float; an integer too large for one is infinite (and rejected)."""
    try:
        return float(raw)
    except OverflowError:
        return np.inf


def _parse_ts(raw: Any) -> tuple[float, str]:
    """Epoch seconds, and the reject reason (empty when it parsed)."""
    if isinstance(raw, bool):
        return np.nan, "bad_ts"
    if isinstance(raw, int | float):
        ts = _number(raw)
        if not np.isfinite(ts):
            return np.nan, "bad_ts"
        return (ts / 1000.0 if abs(ts) > MS_THRESHOLD else ts), ""
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return np.nan, "bad_ts"
        if parsed.tzinfo is None:
            return np.nan, "ts_no_timezone"
        return parsed.timestamp(), ""
    if raw is None:
        return np.nan, "missing_ts"
    return np.nan, "bad_ts"


def normalize(
    msg: RawMessage, registry: Registry, *, max_future_s: float = FUTURE_TOLERANCE_S
) -> tuple[ReadingBatch, list[Reject]]:
    """Turn one raw message into readings and rejects.  Never raises for bad input."""
    rejects: list[Reject] = []

    def reject(reason: str, raw: str, detail: str | None = None) -> None:
        rejects.append(
            Reject(
                reason,
                storable(raw[:RAW_LIMIT]),
                msg.source,
                msg.received,
                storable(msg.topic) if msg.topic else msg.topic,
                storable(detail[:RAW_LIMIT]) if detail else detail,
            )
        )

    site_key = -1
    if msg.site == "":
        reject(
            "bad_topic",
            _text(msg.payload),
            f"topic {msg.topic} is not riskmon/v1/<tenant>/<site>/readings",
        )
        return ReadingBatch.empty(), rejects
    if msg.site is not None:
        site = registry.sites.get(msg.site)
        if site is None or (msg.tenant is not None and site.tenant != msg.tenant):
            reason = "unknown_site" if site is None else "wrong_tenant"
            reject(reason, _text(msg.payload), f"topic {msg.topic}")
            return ReadingBatch.empty(), rejects
        site_key = registry.site_keys[msg.site]

    try:
        items = decode_payload(msg.payload)
    except DecodeFailure as failure:
        reject(failure.reason, _text(msg.payload), failure.detail)
        return ReadingBatch.empty(), rejects

    # Per item: its fields into lists (index, key, ts, value, quality), or its reject code.
    # ``type(x) is int`` leaves bools out (they are their own type); JSON gives exact types
    at: list[int] = []
    keys_l: list[int] = []
    ts_l: list[float] = []
    value_l: list[float] = []
    quality_l: list[int] = []
    failed: list[tuple[int, str]] = []
    lookup = registry.keys
    for i, item in enumerate(items):
        if type(item) is not dict:
            failed.append((i, "reading_not_object"))
            continue
        sensor = item.get("sensor")
        if type(sensor) is not str or not sensor:
            failed.append((i, "missing_sensor"))
            continue
        key = lookup.get(sensor)
        if key is None:
            failed.append((i, "unknown_sensor"))
            continue
        v: Any = item.get("value")
        kind = type(v)
        if kind is int:
            v = _number(v)
        elif kind is not float:
            failed.append((i, "missing_value" if v is None else "value_not_number"))
            continue
        t: Any = item.get("ts")
        if type(t) is not float or not -MS_THRESHOLD <= t <= MS_THRESHOLD:  # NaN: not fast
            t, why = _parse_ts(t)
            if why:
                failed.append((i, why))
                continue
        q = item.get("quality", 0)
        if type(q) is not int or not -32768 <= q <= 32767:
            failed.append((i, "bad_quality"))
            continue
        at.append(i)
        keys_l.append(key)
        ts_l.append(t)
        value_l.append(v)
        quality_l.append(q)

    keys = np.array(keys_l, np.int32)
    ts = np.array(ts_l, np.float64)
    value = np.array(value_l, np.float64)
    # the checks over the whole message, in this order: the first that fails is the reason
    checks = [
        ("value_not_finite", ~np.isfinite(value)),
        ("ts_in_future", ts > msg.received + max_future_s),
        ("ts_out_of_range", ts < MIN_EPOCH_S),
    ]
    if msg.site is None and msg.tenant is not None:  # an ingest key of one enterprise
        own = [k for s, k in registry.site_keys.items() if registry.sites[s].tenant == msg.tenant]
        checks.append(("wrong_tenant", ~np.isin(registry.site_of[keys], own)))
    if site_key >= 0:
        checks.append(("wrong_site", registry.site_of[keys] != site_key))
    bad = np.logical_or.reduce([fails for _, fails in checks])
    if bad.any():  # rare: the reasons one by one
        seen = np.zeros(len(at), bool)
        for reason, fails in checks:
            for j in np.flatnonzero(fails & ~seen).tolist():
                failed.append((at[j], reason))
            seen |= fails
    for i, reason in sorted(failed):
        reject(reason, _item_text(items[i]), _detail(reason, items[i], msg))

    if bad.any():
        keep = np.flatnonzero(~bad)
        keys, ts, value = keys[keep], ts[keep], value[keep]
        quality = np.array(quality_l, np.int16)[keep]
    else:
        quality = np.array(quality_l, np.int16)
    batch = ReadingBatch(keys, ts, value, quality, np.full(len(keys), msg.received, np.float64))
    return batch, rejects


def _detail(reason: str, item: Any, msg: RawMessage) -> str | None:
    if reason == "wrong_site":
        return f"sensor {item.get('sensor')!r} does not belong to site {msg.site!r}"
    if reason == "unknown_sensor":
        return f"sensor {item.get('sensor')!r} is not registered"
    if reason == "ts_in_future":
        return "timestamp more than 5 minutes ahead of the receive time"
    return None


def storable(text: str) -> str:
    """Text PostgreSQL can keep: lone surrogates replaced, NUL shown as an escape."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\u0000")


def _text(payload: bytes) -> str:
    return payload[:RAW_LIMIT].decode("utf-8", errors="replace")


def _item_text(item: Any) -> str:
    # json (not orjson) keeps NaN/Infinity visible in the stored raw text.
    try:
        return json.dumps(item, ensure_ascii=False, default=str)[:RAW_LIMIT]
    except (RecursionError, ValueError):
        return "<a reading nested too deep to show>"
