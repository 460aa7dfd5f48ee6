"""Keep the garbage collector off the objects a worker holds for its whole life.

A full collection walks every object the collector tracks; a worker holds about 100,000 of them
from its start on (modules, faust's services, pydantic validators, the recovered tables), and a
full collection in the middle of a batch paused the stream for 50 to 70 ms (seen in
``bench/sync.py`` traces, about one run in three). Once the worker is up (its tables recovered,
before the first batch; at the latest in the first batch) they are moved out of the collector's
generations, after a collection so
that no garbage is kept with them. Objects created later are collected as usual.

The first generation is also collected less often (every :data:`GEN0_THRESHOLD` allocations, not
700): deciding allocates many short-lived objects (states, entries, messages), almost none in
cycles, and with the default a load's worker spent about 40 % of its deciding time in the
collector, mostly in full collections walking the write window's objects (measured with
``gc.callbacks`` on the decide loop of a 2,000-pupil load: 9 of 23 s; 1.3 s with this threshold).
"""

from __future__ import annotations

import gc

_frozen = False
GEN0_THRESHOLD = 20_000  # a first-generation collection then takes about 20 ms


def freeze_long_lived_objects() -> bool:
    """Freeze what exists now, once per process; True if this call did it."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
    return True
