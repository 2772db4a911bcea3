"""Payload decoding: bytes -> list of reading objects, or a message-level reject reason."""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024


class DecodeFailure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_payload(payload: bytes) -> list[Any]:
    """Parse one payload: a reading object or an array of them.

    orjson is tried first (fast); on failure the standard library parser is tried, because it
    accepts the ``NaN``/``Infinity`` tokens that some devices send, so that the other readings
    of such a message can still be kept (the non-finite ones are rejected one by one later).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeFailure("payload_too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        try:
            doc = json.loads(payload)
        except RecursionError:
            raise DecodeFailure("malformed_json", "nested too deep") from None
        except (ValueError, UnicodeDecodeError):
            raise DecodeFailure("malformed_json", str(err)) from err
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        if not doc:
            raise DecodeFailure("empty_batch", "the array holds no readings")
        return doc
    raise DecodeFailure("not_object_or_array", f"top-level JSON is {type(doc).__name__}")
