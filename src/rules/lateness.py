"""Event-time lateness: each sensor's watermark is the newest event time judged for it.

- on time: newer than the watermark;
- late: not newer, but within the allowed lateness; judged in its place by the threshold
  rules: it can raise (never lower) a level, and the alert carries its own event time.  A
  reading older than the rule's last level change for that sensor is not judged again: that
  change came from newer readings, and a replayed reading (redelivery, Kafka replay) is
  exactly such a reading, so replays stay idempotent;
- too late (older than the allowance) and backfilled history: stored, and judged on a fresh
  copy of the graded rules as *retrospective* alerts, which never touch the live state and
  never page anyone.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch


def split_by_lateness(
    batch: ReadingBatch, watermark: np.ndarray, allowed_s: float
) -> tuple[ReadingBatch, ReadingBatch, ReadingBatch]:
    """(on time, late within the allowance, too late) against the watermarks before the
    batch; a batch is sorted by event time, so readings of one sensor within it are on time
    in order."""
    mark = watermark[batch.sensor]
    on_time = batch.ts > mark
    late = (batch.ts < mark) & (batch.ts >= mark - allowed_s)
    too_late = batch.ts < mark - allowed_s  # ts == mark: a duplicate, stored once, not judged
    return batch.take(on_time), batch.take(late), batch.take(too_late)
