"""Write to a Faust table from outside an agent's stream, into a chosen partition.

Faust places a table write (its store partition and changelog partition) by the partition of
the event being processed. The engine and the checkpoint loop have no Faust event: they write on
behalf of a model shard, so they name the partition themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.compat import as_current_event


class _Message:
    __slots__ = ("topic", "partition")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _Anchor:
    """The little of a Faust event that a table write reads: ``event.message.partition`` (and
    ``.topic``, to check once that it has as many partitions as the table's changelog)."""

    __slots__ = ("message", "__weakref__")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


@contextmanager
def writing_to(partition: int, topic: str) -> Iterator[None]:
    """Within this block, table writes go to ``partition`` (store and changelog) as if made
    while handling a message of that partition of ``topic`` (a topic of as many partitions as
    the tables' changelogs: ``<id>-scoring`` for a shard, or the table's own changelog)."""
    with as_current_event(_Anchor(topic, partition)):
        yield
