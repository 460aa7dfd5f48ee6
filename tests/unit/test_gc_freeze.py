"""The worker freezes its start-up objects once."""

from __future__ import annotations

import gc

import pytest

from connectors.stream import gc_freeze


def test_start_up_objects_are_frozen_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_freeze, "_frozen", False)
    thresholds = gc.get_threshold()
    try:
        assert gc_freeze.freeze_long_lived_objects() is True
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.get_threshold() == (*thresholds[:2], gc_freeze.FULL_AFTER)
        assert gc_freeze.freeze_long_lived_objects() is False  # later batches: nothing
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()  # the test process goes on collecting as usual
        gc.set_threshold(*thresholds)
