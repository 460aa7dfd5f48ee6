"""Keep the garbage collector off the objects a worker holds for its whole life.

A full collection walks every object the collector tracks; a worker holds about 100,000 of them
from its start on (modules, faust's services, pydantic validators, the recovered tables), and a
full collection in the middle of a batch paused the stream for 50 to 70 ms (seen in
``bench/sync.py`` traces, about one run in three). Once the worker is up (its tables recovered,
before the first batch; at the latest in the first batch) they are moved out of the collector's
generations, after a collection so
that no garbage is kept with them. Objects created later are collected as usual.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_long_lived_objects() -> bool:
    """Freeze what exists now, once per process; True if this call did it."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True
