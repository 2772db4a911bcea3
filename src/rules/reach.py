"""Reach: how fast a working sensor's reading can change (``max_rate``, units per hour).

A reading farther from the sensor's last reading within reach than ``max_rate`` allows in the
time between them (plus ``slack``, the sensor's noise) is out of reach: a radar level gauge
locked on a false echo, a tank that "fills" 36 % in ten minutes.  Such readings are not
judged, and the next ones are measured from the same last reading within reach, so a false
echo that persists stays out of reach until real filling at ``max_rate`` could have got there.

Vectorized: each reading is first measured from its predecessor in the batch (or the sensor's
stored one); only the sensors where some reading is out of reach are walked reading by
reading, since one rejected reading changes what the next is measured from.
"""

from __future__ import annotations

import numpy as np

from rules.state import Column, SensorTable

COLUMNS = {"reach_ts": Column(np.nan), "reach_value": Column(np.nan)}


def within_reach(
    table: SensorTable,
    rows: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    max_rate: float,
    slack: float = 0.0,
) -> np.ndarray:
    """Which readings (rows in the table, in event-time order per sensor) are within reach:
    at most ``max_rate`` per hour times the time since the last reading within reach, plus
    ``slack`` (the sensor's noise); the table keeps each sensor's last reading within reach."""
    n = rows.shape[0]
    ok = np.ones(n, bool)
    if not n:
        return ok
    per_s = max_rate / 3600.0
    order = np.argsort(rows, kind="stable")
    r, t, v = rows[order], ts[order], values[order]
    first = np.r_[True, r[1:] != r[:-1]]
    prev_t = np.r_[np.nan, t[:-1]]
    prev_v = np.r_[np.nan, v[:-1]]
    prev_t[first], prev_v[first] = table["reach_ts"][r[first]], table["reach_value"][r[first]]
    with np.errstate(invalid="ignore"):
        far = np.abs(v - prev_v) > per_s * np.abs(t - prev_t) + slack  # NaN: nothing yet
    far |= ~first & (t <= prev_t)  # a repeat in the batch: walked, so it is not the reference
    last = np.flatnonzero(np.r_[first[1:], True])
    if far.any():
        for sensor in np.unique(r[far]):
            _walk(table, np.flatnonzero(r == sensor), r, t, v, ok, order, per_s, slack)
        walked = np.isin(r[last], r[far])
        last = last[~walked]
    table["reach_ts"][r[last]], table["reach_value"][r[last]] = t[last], v[last]
    return ok


def _walk(
    table: SensorTable,
    mine: np.ndarray,
    r: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    ok: np.ndarray,
    order: np.ndarray,
    per_s: float,
    slack: float,
) -> None:
    """One sensor's readings one by one, each from the last one within reach."""
    row = int(r[mine[0]])
    at, value = float(table["reach_ts"][row]), float(table["reach_value"][row])
    seen = -np.inf  # the caller passes only readings newer than those judged before
    for i in mine:
        if t[i] <= seen:  # a repeat of a reading of this batch
            ok[order[i]] = False
            continue
        seen = float(t[i])
        if not np.isnan(value) and abs(v[i] - value) > per_s * abs(t[i] - at) + slack:
            ok[order[i]] = False
            continue
        at, value = float(t[i]), float(v[i])
    table["reach_ts"][row], table["reach_value"][row] = at, value
