"""PostgreSQL's binary COPY format built with numpy in one pass: for fixed-width column types
every row is the same record (field count, then each field's length and big-endian value), so
no per-row Python runs.  NULLs are not representable here: a caller stages NaN and maps it."""

from __future__ import annotations

import numpy as np

PG_EPOCH = 946_684_800.0  # 2000-01-01 in Unix seconds
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
# PostgreSQL type: numpy big-endian type of its binary value
TYPES = {"int2": ">i2", "int4": ">i4", "float4": ">f4", "float8": ">f8", "timestamptz": ">i8"}


def to_pg_micros(epoch: np.ndarray) -> np.ndarray:
    return np.rint((epoch - PG_EPOCH) * 1e6).astype(np.int64)


def encode(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """The whole COPY payload of ``columns`` (PostgreSQL type, values; times as epoch
    seconds for ``timestamptz``), all of one length."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (pgtype, _) in enumerate(columns):
        fields += [(f"l{i}", ">i4"), (f"v{i}", TYPES[pgtype])]
    rows = np.empty(len(columns[0][1]) if columns else 0, np.dtype(fields))
    rows["n"] = len(columns)
    for i, (pgtype, values) in enumerate(columns):
        rows[f"l{i}"] = np.dtype(TYPES[pgtype]).itemsize
        rows[f"v{i}"] = to_pg_micros(values) if pgtype == "timestamptz" else values
    return _HEADER + rows.tobytes() + _TRAILER
