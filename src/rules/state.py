"""The one per-sensor state store of rules and detectors.

A ``SensorTable`` keeps named columns of numpy arrays, one row per sensor it holds (a rule holds
the sensors it applies to; the leak rule a second table for its temperature sensors).  Every
evaluator and detector keeps its state in one, so one mechanism does what they all need:

- ``assign`` gives rows to a new set of sensors (a registry that grew, a changed selector) and
  carries each kept sensor's state to its new row; a new sensor starts from the column's fill;
- ``define`` adds columns or gives one a new shape (another window resolution: that column
  starts empty, the rest is kept);
- ``export`` / ``load`` carry the state of a set of sensors for snapshots: only the sensors the
  table holds, with their keys, so a snapshot is as large as the state;
- ``fresh`` / ``judged``: the newest judged event time per sensor (column ``seen``), so an older
  or repeated reading changes nothing.

Detectors of an anomaly rule put their columns into their rule's table under a prefix
(``bind``), so one ``assign`` moves them all.  A column of Python objects (river models)
travels in snapshots pickled; snapshots are written and read only by riskmon's processors.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np


class Column(NamedTuple):
    """``tag``: what else makes the column's meaning (a window's bucket width): another tag,
    and the column starts empty."""

    fill: Any
    dtype: Any = np.float64
    shape: tuple[int, ...] = ()
    tag: Any = None


SEEN = Column(-np.inf)  # the newest judged event time of a sensor


def remap_rows(arr: np.ndarray, mapping: np.ndarray, fill: Any) -> np.ndarray:
    """New rows from old ones: new row i takes old row ``mapping[i]``, or ``fill`` where that
    is -1 (a sensor without state yet)."""
    ok = mapping >= 0
    out = np.full((mapping.shape[0], *arr.shape[1:]), fill, arr.dtype)
    out[ok] = arr[mapping[ok]]
    return out


def repeats(keys: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Readings of a batch at the same event time as an earlier one of their sensor in the
    batch (a resend): the first is judged, the repeats change nothing."""
    order = np.lexsort((ts, keys))
    k, t = keys[order], ts[order]
    again = np.zeros(order.shape[0], bool)
    again[1:] = (k[1:] == k[:-1]) & (t[1:] == t[:-1])
    out = np.zeros(order.shape[0], bool)
    out[order[again]] = True
    return out


class SensorTable:
    def __init__(self, columns: Mapping[str, Column], rows: int = 0) -> None:
        self.columns: dict[str, Column] = {}
        self.data: dict[str, np.ndarray] = {}
        self.keys = np.arange(rows, dtype=np.int64)  # row -> sensor key
        self.row = np.arange(rows, dtype=np.int64)  # sensor key -> row (-1: not held)
        self.define(columns)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.data.values())

    def define(self, columns: Mapping[str, Column]) -> None:
        """Add columns; a column defined anew with another fill, type or shape starts empty."""
        for name, col in columns.items():
            if self.columns.get(name) != col:
                self.columns[name] = col
                self.data[name] = np.full((len(self), *col.shape), col.fill, col.dtype)

    def drop(self, prefix: str, keep: tuple[str, ...] = ()) -> None:
        """Remove the columns whose name starts with ``prefix``, except ``keep``."""
        for name in [n for n in self.columns if n.startswith(prefix) and n not in keep]:
            del self.columns[name], self.data[name]

    def assign(self, keys: np.ndarray, capacity: int = 0) -> np.ndarray:
        """Hold exactly these sensors (keys, ascending and distinct) of a registry of
        ``capacity`` keys.  Returns which rows are new (no state was held for their sensor)."""
        keys = np.asarray(keys, np.int64)
        held, mapping = self.rows(keys)
        for name, col in self.columns.items():
            self.data[name] = remap_rows(self.data[name], mapping, col.fill)
        size = int(keys.max()) + 1 if keys.shape[0] else 0
        self.row = np.full(max(size, capacity), -1, np.int64)
        self.row[keys] = np.arange(keys.shape[0])
        self.keys = keys
        return ~held

    def rows(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``keys`` are held, their rows; -1 where not)."""
        keys = np.asarray(keys, np.int64)
        known = (keys >= 0) & (keys < self.row.shape[0])
        rows = np.full(keys.shape[0], -1, np.int64)
        rows[known] = self.row[keys[known]]
        return rows >= 0, rows

    def row_of(self, key: int) -> int:
        return int(self.row[key]) if 0 <= key < self.row.shape[0] else -1

    def fresh(self, rows: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Readings newer than the newest judged one of their row, and not a resend of an
        earlier one of the same batch."""
        return np.asarray((ts > self.data["seen"][rows]) & ~repeats(rows, ts))

    def judged(self, rows: np.ndarray, ts: np.ndarray) -> None:
        if rows.shape[0]:
            np.maximum.at(self.data["seen"], rows, ts)

    def reset(self, rows: np.ndarray) -> None:
        for name, col in self.columns.items():
            self.data[name][rows] = col.fill

    def export(self, keys: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        """The state of those of ``keys`` this table holds, with their keys."""
        held, rows = self.rows(keys)
        rows = rows[held]
        out = {f"{prefix}keys": np.asarray(keys, np.int64)[held]}
        for name, col in self.columns.items():
            out.update(carried(f"{prefix}{name}", col, self.data[name][rows]))
        return out

    def load(self, state: Mapping[str, np.ndarray], prefix: str = "") -> None:
        """Restore what ``export`` wrote, for the sensors this table holds.  A column saved
        with another shape (another resolution) or not saved stays as it is."""
        saved = state.get(f"{prefix}keys")
        if saved is None:
            return
        held, rows = self.rows(saved)
        for name, col in self.columns.items():
            values = restored(state, f"{prefix}{name}", col, saved.shape[0])
            if values is not None:
                self.data[name][rows[held]] = values[held]


def carried(name: str, col: Column, values: np.ndarray) -> dict[str, np.ndarray]:
    """A column's values as snapshot arrays (objects pickled: ``name.len``, ``name.blob``)."""
    if col.dtype is not object:
        return {name: values}
    blobs = [pickle.dumps(v) for v in values.tolist()]
    return {
        f"{name}.len": np.array([len(b) for b in blobs], np.int64),
        f"{name}.blob": np.frombuffer(b"".join(blobs), np.uint8),
    }


def restored(state: Mapping[str, np.ndarray], name: str, col: Column, n: int) -> np.ndarray | None:
    """What ``carried`` wrote for ``n`` rows, or None (not saved, or another shape)."""
    if col.dtype is not object:
        values = state.get(name)
        return values if values is not None and values.shape == (n, *col.shape) else None
    lengths, blob = state.get(f"{name}.len"), state.get(f"{name}.blob")
    if lengths is None or blob is None or lengths.shape[0] != n:
        return None
    data, pos, out = blob.tobytes(), 0, np.empty(n, object)
    for i, size in enumerate(lengths.tolist()):
        out[i] = pickle.loads(data[pos : pos + size])
        pos += size
    return out


class TableState:
    """Snapshots and resets of an evaluator whose whole state is its ``table``."""

    table: SensorTable

    @property
    def row(self) -> np.ndarray:
        """Sensor key -> row of ``table`` (-1: the rule does not apply)."""
        return self.table.row

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        return self.table.export(keys)

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        self.table.load(state)

    def reset(self, keys: np.ndarray, now: float) -> None:
        ok, rows = self.table.rows(keys)
        self.table.reset(rows[ok])


class column:
    """An attribute that is a column of its owner's ``table``: ``active = column()``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> np.ndarray:
        table: SensorTable = obj.table
        return table.data[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{self.name} is a table column: assign its items")
