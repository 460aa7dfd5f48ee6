"""Topic contracts: exported JSON Schemas are current; messages round-trip through their schema."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from schemas.export import JSON_DIR, rendered
from schemas.feed import (
    Category,
    FeedMessage,
    Pupil,
    PupilUpserted,
    SourceRef,
    payload_version,
    record_key,
)
from schemas.topics import ALL_TOPICS


def test_exported_json_schemas_are_current() -> None:
    for name, text in rendered().items():
        path = JSON_DIR / name
        assert path.exists(), f"run 'python -m schemas.export' ({name} missing)"
        assert path.read_text() == text, f"run 'python -m schemas.export' ({name} is stale)"


def test_topic_names_are_versioned_and_unique() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert all(n.rsplit(".", 1)[-1].startswith("v") for n in names)


def _pupil_event() -> PupilUpserted:
    pupil = Pupil(jointure="ONDE$1", ine="1234567890A", last_name="Lefèvre", first_name="Zoé")
    return PupilUpserted(
        key=record_key("pupil", pupil.jointure),
        version=payload_version(pupil),
        source=SourceRef(
            file_name="f.xml",
            file_digest="0" * 64,
            category=Category.PUPILS,
            record_index=0,
            extract_date=date(2026, 9, 3),
            complete=True,
        ),
        pupil=pupil,
    )


def test_feed_message_round_trip() -> None:
    event = _pupil_event()
    wire = FeedMessage(event).model_dump_json()
    assert FeedMessage.model_validate_json(wire).root == event


def test_payload_version_is_content_based() -> None:
    a = Pupil(jointure="ONDE$1", last_name="A", first_name="B")
    assert payload_version(a) == payload_version(a.model_copy())
    assert payload_version(a) != payload_version(a.model_copy(update={"first_name": "C"}))


def test_unknown_fields_and_types_are_refused() -> None:
    wire = FeedMessage(_pupil_event()).model_dump_json()
    with pytest.raises(ValidationError):
        FeedMessage.model_validate_json(wire.replace('"pupil.upserted"', '"pupil.exploded"'))
    with pytest.raises(ValidationError):
        FeedMessage.model_validate_json(wire[:-1] + ',"surprise":1}')
