"""aiokafka's own records for the engine's consumer, without a ConsumerRecord per message.

aiokafka's fetcher wraps each record of a fetched batch (a C object with ``offset``, ``key``,
``value``, ``timestamp``, ``headers``) into a Python ``ConsumerRecord``: a dataclass of eleven
fields, which costs about as much per message as decoding its JSON and makes every read of
thousands of records several megabytes larger. A consumer created with
``key_deserializer=RAW`` gets the C records themselves from ``getmany``, keys and values as the
bytes Kafka holds; every other consumer of the process (Faust's) is untouched.

This replaces one method of aiokafka's ``PartitionRecords``: :func:`app.compat.return_raw_records`,
which tests/unit/test_compat.py checks against the installed version.
"""

from __future__ import annotations

from app import compat


class _Raw:
    """Marker deserializer: never called (the records keep Kafka's bytes)."""

    def __call__(self, data: bytes | None) -> bytes | None:
        return data

    def __repr__(self) -> str:
        return "RAW"


#: Pass as ``key_deserializer`` to get aiokafka's C records from ``getmany``.
RAW = _Raw()


def install() -> None:
    """Make consumers created with ``key_deserializer=RAW`` return C records (idempotent)."""
    compat.return_raw_records(RAW)
