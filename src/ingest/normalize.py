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

# Codes of the checks done per item; index into this table is stored in a small int array.
_OK = 0
_REASONS = [
    "",
    "reading_not_object",
    "missing_sensor",
    "unknown_sensor",
    "missing_value",
    "value_not_number",
    "missing_ts",
    "bad_ts",
    "ts_no_timezone",
    "bad_quality",
]
_CODE = {name: i for i, name in enumerate(_REASONS)}
NOT_OBJECT, MISSING_SENSOR, UNKNOWN_SENSOR = (
    _CODE["reading_not_object"], _CODE["missing_sensor"], _CODE["unknown_sensor"],
)  # fmt: skip
MISSING_VALUE, NOT_NUMBER, BAD_QUALITY = (
    _CODE["missing_value"], _CODE["value_not_number"], _CODE["bad_quality"],
)  # fmt: skip


def _number(raw: int | float) -> float:
    """A JSON number as a float; an integer too large for one is infinite (and rejected)."""
    try:
        return float(raw)
    except OverflowError:
        return np.inf


def _parse_ts(raw: Any) -> tuple[float, int]:
    if isinstance(raw, bool):
        return np.nan, _CODE["bad_ts"]
    if isinstance(raw, int | float):
        ts = _number(raw)
        if not np.isfinite(ts):
            return np.nan, _CODE["bad_ts"]
        return (ts / 1000.0 if abs(ts) > MS_THRESHOLD else ts), _OK
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return np.nan, _CODE["bad_ts"]
        if parsed.tzinfo is None:
            return np.nan, _CODE["ts_no_timezone"]
        return parsed.timestamp(), _OK
    if raw is None:
        return np.nan, _CODE["missing_ts"]
    return np.nan, _CODE["bad_ts"]


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

    n = len(items)
    code = np.zeros(n, np.int8)
    keys = np.full(n, -1, np.int32)
    ts = np.full(n, np.nan, np.float64)
    value = np.full(n, np.nan, np.float64)
    quality = np.zeros(n, np.int16)
    lookup = registry.keys
    # ``type(x) is int`` leaves bools out (they are their own type); JSON gives exact types
    for i, item in enumerate(items):
        if type(item) is not dict:
            code[i] = NOT_OBJECT
            continue
        sensor = item.get("sensor")
        if type(sensor) is not str or not sensor:
            code[i] = MISSING_SENSOR
            continue
        key = lookup.get(sensor)
        if key is None:
            code[i] = UNKNOWN_SENSOR
            continue
        keys[i] = key
        v: Any = item.get("value")
        kind = type(v)
        if kind is float:
            value[i] = v
        elif kind is int:
            value[i] = _number(v)
        else:
            code[i] = MISSING_VALUE if v is None else NOT_NUMBER
            continue
        t: Any = item.get("ts")
        kind = type(t)
        if kind is float and -MS_THRESHOLD <= t <= MS_THRESHOLD:  # NaN fails: no fast path
            ts[i] = t
        else:
            ts[i], c = _parse_ts(t)
            if c:
                code[i] = c
                continue
        q = item.get("quality", 0)
        if q != 0 or type(q) is not int:
            if type(q) is not int or not -32768 <= q <= 32767:
                code[i] = BAD_QUALITY
                continue
            quality[i] = q

    ok = code == _OK
    extra = np.full(n, "", dtype=object)
    bad_value = ok & ~np.isfinite(value)
    extra[bad_value] = "value_not_finite"
    future = ok & ~bad_value & (ts > msg.received + max_future_s)
    extra[future] = "ts_in_future"
    too_old = ok & ~bad_value & (ts < MIN_EPOCH_S)
    extra[too_old] = "ts_out_of_range"
    if msg.site is None and msg.tenant is not None:  # an ingest key of one enterprise
        own = [k for s, k in registry.site_keys.items() if registry.sites[s].tenant == msg.tenant]
        other = ok & (extra == "") & ~np.isin(registry.site_of[np.maximum(keys, 0)], own)
        extra[other] = "wrong_tenant"
    wrong_site = np.zeros(n, bool)
    if site_key >= 0:
        wrong_site = ok & (extra == "") & (registry.site_of[np.maximum(keys, 0)] != site_key)
        extra[wrong_site] = "wrong_site"
    ok &= extra == ""

    for j in np.flatnonzero(~ok):
        reason = _REASONS[int(code[j])] if code[j] else str(extra[j])
        reject(reason, _item_text(items[j]), _detail(reason, items[j], msg))

    idx = np.flatnonzero(ok)
    batch = ReadingBatch(
        keys[idx],
        ts[idx],
        value[idx],
        quality[idx],
        np.full(idx.shape[0], msg.received, np.float64),
    )
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
