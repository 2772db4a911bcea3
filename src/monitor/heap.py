"""The garbage collector and a long-running service's heap.

CPython's full (generation 2) collection walks every object it tracks.  After start-up the
service holds a few hundred thousand objects that live as long as it does (modules, the
registry, the rules, the API's models); on the 2-core machine a full collection over them
took 100-350 ms, with the GIL held, so the event loop and the judging thread stopped and an
alert waiting behind one came that much later (docs/benchmarks.md, session 16).
``gc.freeze`` after start-up moves them to a permanent generation that collections skip;
what the service makes afterwards is collected as before.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then leave every object alive now out of later collections.  Returns
    how many objects were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects left out of garbage collections", frozen)
    return frozen
