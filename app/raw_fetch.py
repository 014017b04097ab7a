"""aiokafka's own records for the engine's consumer, without a ConsumerRecord per message.

aiokafka's fetcher wraps each record of a fetched batch (a C object with ``offset``, ``key``,
``value``, ``timestamp``, ``headers``) into a Python ``ConsumerRecord``: a dataclass of eleven
fields, which costs about as much per message as decoding its JSON and makes every read of
thousands of records several megabytes larger. A consumer created with
``key_deserializer=RAW`` gets the C records themselves from ``getmany``, keys and values as the
bytes Kafka holds; every other consumer of the process (Faust's) is untouched.

This replaces one method of aiokafka's ``PartitionRecords`` (aiokafka is pinned);
tests/unit/test_raw_fetch.py checks it against the installed version.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher


class _Raw:
    """Marker deserializer: never called (the records keep Kafka's bytes)."""

    def __call__(self, data: bytes | None) -> bytes | None:
        return data

    def __repr__(self) -> str:
        return "RAW"


#: Pass as ``key_deserializer`` to get aiokafka's C records from ``getmany``.
RAW = _Raw()

_consumer_record = fetcher.PartitionRecords._consumer_record


def _raw_or_consumer_record(self: fetcher.PartitionRecords, tp: Any, record: Any) -> Any:
    if self._key_deserializer is RAW:
        return record
    return _consumer_record(self, tp, record)


def install() -> None:
    """Make consumers created with ``key_deserializer=RAW`` return C records (idempotent)."""
    fetcher.PartitionRecords._consumer_record = _raw_or_consumer_record
