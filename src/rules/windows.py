"""Bounded per-sensor windows: a ring of time buckets per sensor row.

Each row (a sensor under the rule) has ``n`` slots; slot ``b % n`` holds the statistics of
bucket ``b`` (event time ``[b * width, (b + 1) * width)``) and the bucket's number, so a slot
left from an older lap of the ring is recognised and reset.  Memory is ``n`` slots per row and
field, whatever the sampling rate.  A window query sums (or takes the extreme of) the slots whose
bucket lies in a range: windows are exact to the bucket edge, which is the rule's resolution.

A rule's own windows are *spans*, fixed offsets back from the reading's bucket.  A span keeps
a running aggregate per row: its closed buckets (those before the reading's), taken once when
the row enters a new bucket, plus the current bucket's slot.  A row's readings come in event-time
order (older ones are judged already), so its closed buckets do not change while it stays in a
bucket, and a reading costs the same whatever the number of buckets.

Every operation takes arrays of rows with no row twice (one *round* of a batch, see
``rounds``), so a batch is a few numpy calls per round, not a Python step per reading.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rules.state import Column, SensorTable, repeats

EMPTY = np.iinfo(np.int64).min  # bucket number of a slot that holds nothing


def rounds(rows: np.ndarray, ts: np.ndarray) -> list[np.ndarray]:
    """Positions of a batch in rounds: round k holds each row's k-th reading (in event-time
    order), so a round has no row twice and rounds run in order.  A reading at the same event
    time as the one before it of its row is left out (a duplicate)."""
    if rows.shape[0] == 0:
        return []
    keep = np.flatnonzero(~repeats(rows, ts))
    order = keep[np.lexsort((ts[keep], rows[keep]))]
    r = rows[order]
    first = np.ones(order.shape[0], bool)
    first[1:] = r[1:] != r[:-1]
    start = np.flatnonzero(first)
    rank = np.arange(order.shape[0]) - np.repeat(start, np.diff(np.append(start, order.shape[0])))
    by_rank = np.argsort(rank, kind="stable")
    counts = np.bincount(rank)
    return np.split(order[by_rank], np.cumsum(counts)[:-1])


class BucketRing:
    """``fields``: name -> how a slot keeps it ("sum" fields add, "max"/"min" keep the
    extreme, "last" and "first" fields keep the newest and oldest reading).  The slots are
    columns ``{prefix}bucket`` and ``{prefix}{field}`` of a sensor table (``rules.state``); a
    ring of another width or size starts empty.  ``spans``: name -> (oldest, newest) bucket
    back from the reading's, ``0 <= newest <= oldest < n``; each keeps the running aggregates of
    the ring's sum, max and min fields (columns ``{prefix}{span}.b`` and
    ``{prefix}{span}.{field}``).
    """

    def __init__(
        self,
        width: float,
        n: int,
        fields: dict[str, str],
        table: SensorTable,
        prefix: str,
        spans: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.width, self.n, self.fields = float(width), int(n), dict(fields)
        self.table, self.prefix = table, prefix
        self.spans = dict(spans or {})
        columns = {f"{prefix}bucket": Column(EMPTY, np.int64, (self.n,), self.width)}
        for name, how in self.fields.items():
            columns[f"{prefix}{name}"] = Column(_fill(how), np.float64, (self.n,), self.width)
        self._running = [name for name, how in self.fields.items() if how in RUNNING]
        for span, (oldest, newest) in self.spans.items():
            if not 0 <= newest <= oldest < self.n:
                raise ValueError(f"span {span!r} must lie within the ring's {self.n} buckets")
            tag = (self.width, self.n, oldest, newest)
            columns[f"{prefix}{span}.b"] = Column(EMPTY, np.int64, (), tag)
            for name in self._running:
                fill = _fill(self.fields[name])
                columns[f"{prefix}{span}.{name}"] = Column(fill, np.float64, (), tag)
        table.drop(prefix, keep=tuple(columns))
        table.define(columns)
        self._names = {name: f"{prefix}{name}" for name in (*self.fields, "bucket")}

    @property
    def bucket(self) -> np.ndarray:
        return self.table.data[self._names["bucket"]]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.table.data[self._names[name]]

    def bucket_of(self, ts: np.ndarray) -> np.ndarray:
        return np.floor(ts / self.width).astype(np.int64)

    def add(self, rows: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """One reading per row: ``values`` gives each field's contribution."""
        b = self.bucket_of(ts)
        slot = b % self.n
        bucket = self.bucket
        stale = bucket[rows, slot] != b
        if stale.any():
            sr, ss = rows[stale], slot[stale]
            bucket[sr, ss] = b[stale]
            for name, how in self.fields.items():
                self[name][sr, ss] = _fill(how)
        for name, how in self.fields.items():
            arr, v = self[name], values[name]
            if how in RUNNING:
                arr[rows, slot] = _merge(how, arr[rows, slot], v)
            elif how == "last":
                arr[rows, slot] = v
            else:  # first: only into a slot that was empty
                arr[rows, slot] = np.where(np.isnan(arr[rows, slot]), v, arr[rows, slot])

    def span(self, rows: np.ndarray, b: np.ndarray, span: str, name: str) -> np.ndarray:
        """The aggregate of field ``name`` over span ``span`` for each row whose reading lies in
        bucket ``b`` (rows with no row twice, after ``add``): its closed buckets' running
        aggregate, taken again only for a row that entered a new bucket, and the current slot."""
        oldest, newest = self.spans[span]
        at = self.table.data[f"{self.prefix}{span}.b"]
        stale = np.flatnonzero(at[rows] != b)
        if stale.shape[0]:
            sr, sb = rows[stale], b[stale]
            closed = self.within(sr, sb - oldest, sb - max(newest, 1))
            for field in self._running:
                kept = self.table.data[f"{self.prefix}{span}.{field}"]
                sums = self.fields[field] == "sum"
                got = self.total(sr, closed, field) if sums else self.extreme(sr, closed, field)
                kept[sr] = got
            at[sr] = sb
        out = self.table.data[f"{self.prefix}{span}.{name}"][rows]
        if newest > 0:
            return np.asarray(out)
        slot = b % self.n
        here = self.bucket[rows, slot] == b
        how = self.fields[name]
        return _merge(how, out, np.where(here, self[name][rows, slot], _fill(how)))

    def within(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Which slots of each row hold a bucket in ``[lo, hi]`` (bucket numbers)."""
        ids = self.bucket[rows]
        inside: np.ndarray = (ids >= lo[:, None]) & (ids <= hi[:, None])
        return inside

    def total(self, rows: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
        return np.asarray(np.where(mask, self[name][rows], 0.0).sum(axis=1))

    def extreme(self, rows: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
        how = self.fields[name]
        arr = np.where(mask, self[name][rows], np.nan)
        with np.errstate(all="ignore"):
            pick = np.fmax.reduce if how == "max" else np.fmin.reduce
            return np.asarray(pick(arr, axis=1))


RUNNING = ("sum", "max", "min")  # the fields a span keeps running aggregates of


def _merge(how: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two aggregates of a running field into one (NaN: nothing yet, for max and min)."""
    if how == "sum":
        return np.asarray(a + b)
    return np.asarray(np.fmax(a, b) if how == "max" else np.fmin(a, b))


def _fill(how: str) -> float:
    return 0.0 if how == "sum" else np.nan
