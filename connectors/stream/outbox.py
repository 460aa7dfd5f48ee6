"""What both agents send, and how they name the cause of what they do.

``send`` hands (key, JSON) messages to the producer and returns their delivery futures;
``send_inputs`` delivers entity inputs (links to one entity packed together, see
:func:`sync.links.pack_links`); ``cause_from`` names the Kafka position (and source file) of the
event that caused a decision, as every audit event does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from connectors.stream.intake import EntityEnds
from connectors.stream.ports import Sent, StreamEvent, Topic
from connectors.stream.records import send_keyed, send_keyed_batches
from schemas.entities import Cause, EntityInput, EntityMessage
from schemas.feed import SourceRef
from sync.causes import message_cause
from sync.links import pack_links


async def send(topic: Topic, messages: Iterable[tuple[str, str]]) -> list[Sent]:
    """Hand (key, JSON) messages to the producer, in record batches; the futures resolve on
    delivery."""
    return await send_keyed(topic, messages)


async def send_inputs(
    entities_topic: Topic, inputs: Sequence[EntityInput], ends: EntityEnds | None = None
) -> None:
    """Deliver entity inputs (awaited); the links to one entity travel and are decided together.
    ``ends`` learns where each delivery landed (the intake's backlog, :mod:`.intake`)."""
    packed = pack_links(inputs)
    messages = ((i.entity_id, EntityMessage(i).model_dump_json()) for i in packed)
    for partition, count, fut in await send_keyed_batches(entities_topic, messages):
        first = (await fut).offset  # a record batch: its first record's offset
        if ends is not None:
            ends.delivered(partition, first + count)


def cause_from(event: StreamEvent, rule: str, source: SourceRef | None = None) -> Cause:
    """The cause of what a faust event leads to (:func:`sync.causes.message_cause`)."""
    message = event.message
    timestamp = getattr(message, "timestamp", None) or 0.0
    return message_cause(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        at=datetime.fromtimestamp(timestamp, tz=UTC),
        rule=rule,
        source=source,
    )
