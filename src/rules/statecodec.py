"""Snapshot encoding of rule state: named numpy arrays to bytes and back.

The encoding is ``MAGIC``, the length of a JSON header (name, dtype, shape of each array),
the header, then the arrays' bytes in that order, deflated at level 1 straight from the
arrays' memory.  That costs no copy and holds the GIL only between arrays (zlib releases it
while it compresses), so a worker thread that encodes a city's state (66 MB) does not stall
the thread that judges.  ``np.savez`` held the GIL for about 0.3 s of that.

Snapshots written before, an npz deflated whole or a plain npz, still decode.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import orjson

MAGIC = b"RMS1"
_NPZ_MAGIC = b"PK"  # an npz is a zip file
_LENGTH = struct.Struct("<I")


class StateFormatError(ValueError):
    """Bytes that are not an encoded rule state."""


def encode_state(arrays: dict[str, np.ndarray]) -> bytes:
    header, parts = [], []
    for name, values in arrays.items():
        values = np.asarray(values)
        if not values.flags.c_contiguous:
            values = values.copy()
        if values.dtype.hasobject:
            raise StateFormatError(f"state array {name!r} holds Python objects")
        header.append([name, values.dtype.str, list(values.shape)])
        parts.append(values.reshape(-1).view(np.uint8).data)
    head = orjson.dumps(header)
    deflate = zlib.compressobj(1)
    out = [MAGIC, _LENGTH.pack(len(head)), head]
    out.extend(deflate.compress(part) for part in parts)
    out.append(deflate.flush())
    return b"".join(out)


def decode_state(data: bytes) -> dict[str, np.ndarray]:
    """What ``encode_state`` wrote, as writable arrays."""
    try:
        if data[: len(MAGIC)] != MAGIC:
            return _legacy(data)
        start = len(MAGIC) + _LENGTH.size
        (length,) = _LENGTH.unpack_from(data, len(MAGIC))
        header = orjson.loads(data[start : start + length])
        body = zlib.decompress(memoryview(data)[start + length :])
        out, at = {}, 0
        for name, dtype, shape in header:
            kind = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            out[name] = np.frombuffer(body, kind, count, at).reshape(shape).copy()
            at += count * kind.itemsize
    except (ValueError, TypeError, KeyError, OSError, EOFError, struct.error, zlib.error,
            zipfile.BadZipFile) as err:  # fmt: skip
        raise StateFormatError(f"not an encoded rule state: {err}") from err
    if at != len(body):
        raise StateFormatError(f"encoded rule state has {len(body) - at} bytes past its arrays")
    return out


def _legacy(data: bytes) -> dict[str, np.ndarray]:
    if data[: len(_NPZ_MAGIC)] != _NPZ_MAGIC:
        data = zlib.decompress(data)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
