"""Keep the garbage collector off the objects a worker holds for its whole life.

A full collection walks every object the collector tracks; a worker holds about 100,000 of them
from its start on (modules, faust's services, pydantic validators, the recovered tables), and a
full collection in the middle of a batch paused the stream for 50 to 70 ms (seen in
``bench/sync.py`` traces, about one run in three). Once the worker is up (its tables recovered,
before the first batch; at the latest in the first batch) they are moved out of the collector's
generations, after a collection so
that no garbage is kept with them. Objects created later are collected, as below.

Full collections are also made rarer (after :data:`FULL_AFTER` second-generation ones, not 10):
with the default, a load's worker spent about 40 % of its deciding time in the collector, mostly
in full collections walking the write window's objects, which grow with the window (measured
with ``gc.callbacks`` on the decide loop of a 2,000-pupil load: 9 of 23 s, 6.6 s of it in 18
full collections; 2.6 s with 4 full collections). The younger generations keep their
thresholds, so that short-lived cycles are freed as soon as before (a first generation collected
every 20,000 allocations instead of 700 saved about 0.5 s more of the 23 s).
"""

from __future__ import annotations

import gc

_frozen = False
FULL_AFTER = 100  # second-generation collections between two full ones


def freeze_long_lived_objects() -> bool:
    """Freeze what exists now, once per process; True if this call did it."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    young, older, _ = gc.get_threshold()
    gc.set_threshold(young, older, FULL_AFTER)
    return True
