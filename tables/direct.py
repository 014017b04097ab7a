"""Table writes that skip Faust's producer buffer: into a table's changelog as record batches of
an :class:`~app.kafka.outbox.Outbox`, and into its local store; and a scan of one partition of the
local store (:func:`stored`), which Faust's table API does not offer.

Faust sends each table write through its producer buffer, and ``Producer.flush()`` returns
once that buffer has been idle for 0.1 s, whether or not the write has left it
(``ProducerBuffer.flush_atmost``): a write that must be in Kafka before the next step (a model
checkpoint, the window values it stands on) is sent here instead, and is in Kafka once the
outbox's flush returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.types import TP

from app.compat import partition_db, store_encoders
from app.kafka.outbox import Outbox
from tables.anchor import writing_to


def to_changelog(table: Any, shard: int, values: Mapping[Any, bytes | None], out: Outbox) -> None:
    """Append ``values`` (key to value; None: delete) to ``table``'s changelog partition
    ``shard``. Nothing is in Kafka until ``out`` is flushed."""
    store = table.data
    topic = table.changelog_topic.get_topic_name()
    encode_key, encode_value = store_encoders(store)
    for key, value in values.items():
        out.add(topic, shard, encode_key(key), None if value is None else encode_value(value))


def to_store(table: Any, shard: int, values: Mapping[Any, bytes | None]) -> None:
    """Write ``values`` (None: delete) into the local store of ``table``, partition ``shard``."""
    store = table.data
    # the store's partition of a shard is the shard, that of the changelog's partition
    with writing_to(shard, table.changelog_topic.get_topic_name()):
        for key, value in values.items():
            if value is not None:
                store[key] = value
            else:
                try:
                    del store[key]
                except KeyError:  # (a memory store's; RocksDB deletes a missing key quietly)
                    pass


def persisted(table: Any, shard: int, out: Outbox) -> None:
    """Tell ``table``'s local store which changelog offset it holds, once ``out`` was flushed,
    so that a recovery reads only what came after."""
    topic = table.changelog_topic.get_topic_name()
    offset = out.acked.get((topic, shard))
    if offset is not None:
        table.data.set_persisted_offset(TP(topic, shard), offset)


def stored(
    table: Any, shard: int, after: bytes | None, limit: int, max_bytes: int
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Entries ``(encoded key, encoded value)`` of ``table``'s local store partition ``shard``
    in the store's key order, from the first encoded key after ``after`` (None: from the
    first): ``limit`` of them at most, fewer once their values add up to ``max_bytes``; and
    whether the partition's end was reached. Read past RocksDB's block cache (a scan would push
    the hot keys out of it). Nothing (and the end) for a store not kept per partition
    (``memory://``) or not read through rocksdict (Faust's python-rocksdb fallback)."""
    store = table.data
    db = partition_db(store, shard)
    if db is None:
        return [], True
    skip = {store.offset_key, after}  # (Faust keeps its changelog offset in each partition)
    entries: list[tuple[bytes, bytes]] = []
    size = 0
    for raw_key, raw_value in db.items(from_key=after, read_opt=_SCAN):
        if raw_key in skip:
            continue
        if len(entries) >= limit or size >= max_bytes:
            return entries, False
        entries.append((raw_key, raw_value))
        size += len(raw_value)
    return entries, True


def _scan_options() -> Any:
    try:
        from rocksdict import ReadOptions
    except ImportError:  # (no rocksdict: stored() reads nothing)
        return None
    options = ReadOptions()
    options.fill_cache(False)
    return options


_SCAN = _scan_options()
