"""The reconciler's part of a window: batches decided one after the other, merged, and written
with one op (and one audit event) per entry; how much input is said to wait.

Real decisions on real entity messages; a table, a writer and a consumer stand in for faust and
LDAP (the whole worker on the broker and slapd is in the integration tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.ldap.errors import DirectoryWriteError
from connectors.ldap.writer import Action, OpResult
from connectors.stream.partition_scans import partition_of
from connectors.stream.progress import Progress
from connectors.stream.reconciler import Reconciler
from schemas.entities import EntityInput, EntityMessage, GroupSpec
from sync import dit, ids
from sync.lifecycle import Policy
from sync.ops import AddEntry, DirectoryOp
from sync.reconcile import Context
from tests.unit.core_factories import BASE, NS, member_link

TOPIC = "entsync.entities.v1"
CLASS = GroupSpec(school_jointure="S1", profile="pupils", class_code="CP", class_label="CP")


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Message:
    tp: TP
    offset: int

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass
class Event:
    key: bytes
    value: bytes
    message: Message


@dataclass
class Writer:
    applied: list[list[DirectoryOp]] = field(default_factory=list)

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]:
        self.applied.append(list(ops))
        return [OpResult(op, Action.ADDED) for op in ops]


@dataclass
class Consumer:
    highwaters: dict[TP, int]
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int:
        return self.highwaters[tp]


class Topic:
    def __init__(self, consumer: Consumer) -> None:
        self.app = type("App", (), {"consumer": consumer})()

    def get_topic_name(self) -> str:
        return TOPIC


def reconciler(consumer: Consumer | None = None, partitions: int = 1) -> Reconciler:
    unused: Any = None
    return Reconciler(
        entities={},
        writer=Writer(),
        entities_topic=Topic(consumer or Consumer({})),
        audit_topic=unused,
        decisions_topic=unused,
        partitions=partitions,
        ctx=Context(base_dn=BASE, namespace=NS),
        policy=Policy(),
        progress=Progress(),
        generation=lambda: 0,
    )


def batch(first_offset: int, *inputs: EntityInput) -> list[Event]:
    return [
        Event(
            i.entity_id.encode(),
            EntityMessage(i).model_dump_json().encode(),
            Message(TP(TOPIC, 0), first_offset + n),
        )
        for n, i in enumerate(inputs)
    ]


async def test_a_group_found_in_three_batches_is_added_once_naming_every_cause() -> None:
    r = reconciler()
    first = r.prepare(batch(0, member_link(CLASS, "el-a", 10)))
    window = first
    for offset, member in ((1, "el-b"), (2, "el-c")):
        later = r.prepare(batch(offset, member_link(CLASS, member, 10 + offset)), window.new_states)
        assert later.ops and later.before  # decided on the window's state: a modify
        window = r.merge(window, later)

    assert await r.write(window)
    [ops] = r.writer.applied
    [op] = ops
    assert isinstance(op, AddEntry) and op.dn == dit.group_dn(CLASS, BASE)
    assert len(op.attributes["member"]) == 3
    [audit] = window.written
    assert audit.action == "add" and audit.cause.offset == 12
    assert [c.offset for c in audit.merged_causes] == [10, 11]
    key = ids.group_id(NS, CLASS).encode()
    assert window.before[key] is None  # what the table had before the window
    assert key in window.changed and len(window.batch) == 3
    assert r.progress.directory_changes == 1


def test_waiting_counts_the_backlog_and_the_inputs_sent_back_to_this_worker() -> None:
    tp0, tp1 = TP(TOPIC, 0), TP(TOPIC, 1)
    consumer = Consumer({tp0: 10, tp1: 4, TP("other", 0): 99}, {tp1: 1})
    r = reconciler(consumer, partitions=2)
    prepared = r.prepare(batch(5, member_link(CLASS, "el-a", 10)))
    # tp0 read up to offset 6 (4 waiting), tp1 from its commit at 1 (3 waiting), one link sent
    assert r.waiting(prepared) == 4 + 3 + len(prepared.emits)

    # A worker of two, with partition 1 only: of the inputs sent, those that come back to it.
    alone = reconciler(Consumer({tp1: 4}, {tp1: 4}), partitions=2)
    specs = [CLASS.model_copy(update={"class_code": f"C{n}"}) for n in range(40)]
    prepared.emits = [member_link(spec, "el-a", n) for n, spec in enumerate(specs)]
    mine = [i for i in prepared.emits if partition_of(i.entity_id.encode(), 2) == 1]
    assert 0 < len(mine) < 40 and alone.waiting(prepared) == len(mine)


def test_delivering_is_faust_flow_control_outside_a_rebalance() -> None:
    r = reconciler()
    app = r.entities_topic.app
    for active, rebalancing, delivering in (
        (True, False, True),
        (False, False, False),
        (True, True, False),
    ):
        app.flow_control = type("Flow", (), {"is_active": lambda self, a=active: a})()
        app.rebalancing = rebalancing
        assert r.delivering() is delivering


@dataclass
class RefusingWriter:
    """Refuses every write for good, as a directory refusing a schema violation does."""

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]:
        error = DirectoryWriteError("modify", ops[0].dn, 65, "objectClassViolation", "")
        error.results = [None] * len(ops)
        error.errors = [error]
        raise error


async def test_a_state_read_from_the_table_is_held_as_its_json_and_a_refused_write_keeps_it() -> (
    None
):
    r = reconciler()
    first = r.prepare(batch(0, member_link(CLASS, "el-a", 10)))
    assert await r.write(first)
    key = ids.group_id(NS, CLASS).encode()
    stored = first.new_states[key]
    assert not isinstance(stored, bytes)
    raw = stored.model_dump_json().encode()
    r.entities[key] = raw  # type: ignore[index]  # the table, as complete() leaves it

    again = r.prepare(batch(1, member_link(CLASS, "el-a", 10)))  # changes nothing
    assert again.before[key] is raw and again.new_states[key] is raw and not again.changed

    r.writer = RefusingWriter()
    later = r.prepare(batch(2, member_link(CLASS, "el-b", 11)))
    assert later.before[key] is raw  # the JSON as read, not an object (window memory)
    assert later.ops and key in later.changed
    assert not await r.write(later)
    kept = later.new_states[key]
    assert not isinstance(kept, bytes)
    assert kept.applied == stored.applied  # the entry stays as the directory has it
    assert "el-b" in str(kept.links)  # the link itself is remembered: tried again later
