"""faust and aiokafka behind one door: the versions and attributes the patches need, checked."""

from __future__ import annotations

import pytest
from faust.transport.consumer import Consumer

from connectors.stream import faust_compat
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import patches
from connectors.stream.faust_compat.patches import FaustCompatError


def test_the_installed_faust_and_aiokafka_are_the_supported_ones() -> None:
    faust_compat.check()  # the versions of SUPPORTED, every attribute of REQUIRED


def test_a_patched_attribute_gone_refuses_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Consumer, "_add_gap")  # as a rename in a faust upgrade would
    with pytest.raises(FaustCompatError, match=r"Consumer\._add_gap is gone"):
        faust_compat.check()
    with pytest.raises(FaustCompatError):
        faust_compat.install(KafkaParams(bootstrap="localhost:9092"), 100)


def test_another_version_refuses_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faust_compat.SUPPORTED, "aiokafka", "0.99")
    with pytest.raises(FaustCompatError, match=r"aiokafka .* written for 0\.99\.x"):
        faust_compat.check()


def test_every_patch_checks_what_it_replaces() -> None:
    class Renamed:
        pass

    with pytest.raises(FaustCompatError, match=r"Renamed\.ack is gone"):
        patches._original(Renamed, "ack")


def test_install_patches_once_and_updates_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = KafkaParams(bootstrap="a:1"), KafkaParams(bootstrap="b:2")
    monkeypatch.setattr(patches, "_config", patches._Config())
    faust_compat.install(first, 100)
    ack = Consumer.ack
    faust_compat.install(second, 250)
    assert Consumer.ack is ack  # not wrapped twice
    assert patches._config.kafka == second and patches._config.fetch_max_wait_ms == 250
