"""The engine's consumer gets aiokafka's C records; other consumers keep ConsumerRecords."""

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from app.raw_fetch import RAW, install

TP = TopicPartition("events", 3)


def fetched(key_deserializer) -> list:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 16,
    )
    for offset, (key, value) in enumerate([(b"k1", b'{"a":1}'), (None, b"x"), (b"k3", None)]):
        builder.append(
            offset, timestamp=1_700_000_000_000 + offset, key=key, value=value, headers=[]
        )
    records = MemoryRecords(bytes(builder.build()))
    return list(PartitionRecords(TP, records, [], 0, key_deserializer, None, True, 0))


def test_raw_consumer_gets_the_records_as_kafka_holds_them():
    install()
    records = fetched(RAW)
    assert not any(isinstance(r, ConsumerRecord) for r in records)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in records] == [
        (0, b"k1", b'{"a":1}', 1_700_000_000_000),
        (1, None, b"x", 1_700_000_000_001),
        (2, b"k3", None, 1_700_000_000_002),
    ]


def test_other_consumers_are_untouched():
    install()
    records = fetched(None)
    assert all(isinstance(r, ConsumerRecord) for r in records)
    assert [(r.topic, r.partition, r.offset, r.key) for r in records] == [
        ("events", 3, 0, b"k1"),
        ("events", 3, 1, None),
        ("events", 3, 2, b"k3"),
    ]
