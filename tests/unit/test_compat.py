"""app/compat.py against the installed libraries, no broker: each test fails when an upgrade
changes what a function relies on (checked against faust-streaming 0.15.3, mode-streaming 0.7.1,
aiokafka 0.14.0, river 0.26.1). The tests may read the libraries' private names themselves."""

import asyncio
import time

import faust
import pytest
from aiohttp import web as aiohttp_web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.types import TP, Message
from river import linear_model, naive_bayes, preprocessing

from app import compat
from app.kafka.raw_fetch import RAW

FAUST_INDEX = "faust.web.apps.production_index:blueprint"


class Event:
    """What Faust reads of the current event to place a table write."""

    def __init__(self, partition: int) -> None:
        self.message = Message("t", partition, 0, 0.0, 0, {}, None, None, None)


# aiokafka


def fetched(key_deserializer) -> list:
    """What aiokafka's fetcher hands out for three records of events[3]."""
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
    tp = TopicPartition("events", 3)
    return list(PartitionRecords(tp, records, [], 0, key_deserializer, None, True, 0))


def test_raw_records_for_the_marked_consumer_only():
    compat.return_raw_records(RAW)
    patched = PartitionRecords._consumer_record
    compat.return_raw_records(RAW)  # idempotent: not wrapped twice
    assert PartitionRecords._consumer_record is patched
    raw = fetched(RAW)
    assert not any(isinstance(r, ConsumerRecord) for r in raw)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in raw] == [
        (0, b"k1", b'{"a":1}', 1_700_000_000_000),
        (1, None, b"x", 1_700_000_000_001),
        (2, b"k3", None, 1_700_000_000_002),
    ]
    others = fetched(None)  # any other consumer (Faust's) still gets ConsumerRecords
    assert all(isinstance(r, ConsumerRecord) for r in others)
    assert [(r.topic, r.partition, r.offset, r.key) for r in others] == [
        ("events", 3, 0, b"k1"),
        ("events", 3, 1, None),
        ("events", 3, 2, b"k3"),
    ]


def test_append_to_batch_appends_at_the_next_offset_until_full():
    batch = BatchBuilder(200, 0)
    before = time.time()
    assert compat.append_to_batch(batch, b"k0", b"v0", [])
    assert compat.append_to_batch(batch, None, b"v1", [("reason", b"why")])
    assert compat.append_to_batch(batch, b"k2", None, [])  # a tombstone
    assert batch.record_count() == 3
    while compat.append_to_batch(batch, b"k", b"x" * 20, []):
        pass
    count = batch.record_count()
    assert not compat.append_to_batch(batch, b"k", b"x" * 20, [])  # full: left as it was
    assert batch.record_count() == count and batch.size() <= 200
    records = MemoryRecords(bytes(batch._build()))
    read = [record for record in records.next_batch()]
    assert [(r.offset, r.key, r.value, list(r.headers)) for r in read[:3]] == [
        (0, b"k0", b"v0", []),
        (1, None, b"v1", [("reason", b"why")]),
        (2, b"k2", None, []),
    ]
    assert [r.offset for r in read] == list(range(count))
    assert before * 1000 - 1 <= read[0].timestamp <= time.time() * 1000 + 1  # None: now


async def test_refresh_metadata_wakes_the_metadata_task_and_is_awaitable():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started: no broker
    client = consumer._client
    try:
        waiting = compat.refresh_metadata(consumer)
        assert client._md_update_waiter.done()  # what wakes aiokafka's metadata task
        client._md_update_fut.set_result(True)  # what that task does once the broker answered
        assert await asyncio.wait_for(waiting, 1) is True
    finally:
        await consumer.stop()


# faust


@pytest.mark.parametrize("drop", [False, True])
def test_a_dropped_blueprint_is_not_served(drop):
    web = faust.App(f"compat-web-{drop}").web
    assert ("", FAUST_INDEX) in web.blueprints._enabled
    if drop:
        assert compat.drop_blueprint(web, FAUST_INDEX)
    web.init_server()  # what the worker does as it starts (no socket is opened here)
    served = {route.resource.canonical for route in web.web_app.router.routes()}
    assert ("/" in served) is not drop
    assert "/table/" in served  # the others stay


async def test_a_web_middleware_sees_every_request_faust_s_server_answers():
    web = faust.App("compat-middleware").web
    seen = []

    @aiohttp_web.middleware
    async def note(request, handler):
        seen.append(request.path)
        return await handler(request)

    compat.add_web_middleware(web, note)
    web.init_server()  # what the worker does as it starts
    async with TestClient(TestServer(web.web_app)) as client:
        assert (await client.get("/table/")).status == 200  # Faust's own page
        assert (await client.get("/no-such-page")).status == 404
        # once the server started, aiohttp's list is frozen: refused, not silently ignored
        with pytest.raises(RuntimeError, match="has started"):
            compat.add_web_middleware(web, note)
    assert seen == ["/table/", "/no-such-page"]


@pytest.mark.parametrize("forget", [False, True])
async def test_forgotten_gaps_hold_the_commit_back(forget):
    consumer = faust.App(f"compat-gaps-{forget}").consumer
    tp = TP("scoring", 0)
    consumer._acked[tp].extend([0, 1, 2])
    await consumer._add_gap(tp, 3, 5)  # what Faust records when it sees 3..5 skipped
    consumer._acked[tp].append(6)
    if forget:
        compat.forget_gaps(consumer, tp, 3)
    # the offset Faust would commit: past the gap, unless it was forgotten
    assert consumer._new_offset(tp) == (3 if forget else 7)


def test_a_forgotten_message_is_not_awaited_nor_acknowledged():
    consumer = faust.App("compat-unacked").consumer
    message = Message("scoring", 0, 7, 0.0, 0, {}, b"k", b"v", None)
    consumer.track_message(message)
    assert message in consumer._unacked_messages  # what a rebalance waits to see empty
    compat.forget_unacked(consumer, message)
    assert not consumer._unacked_messages
    assert not message.acked and not consumer._acked[message.tp]  # not committed


def test_store_encoders_and_decoders_invert_each_other():
    table = faust.App("compat-codec").Table("compat-codec", value_type=bytes)
    store = table.data
    encode_key, encode_value = compat.store_encoders(store)
    raw_key, raw_value = encode_key("card-1"), encode_value(b'{"u":3}')
    assert isinstance(raw_key, bytes) and isinstance(raw_value, bytes)
    assert compat.decode_key(store, raw_key) == "card-1"
    assert compat.decode_value(store, raw_value) == b'{"u":3}'


def test_partition_db_reads_one_partition_of_a_rocksdb_store(tmp_path):
    app = faust.App("compat-rocksdb", store="rocksdb://", datadir=str(tmp_path))
    store = app.Table("compat-rocksdb", value_type=bytes).data
    encode_key, encode_value = compat.store_encoders(store)
    with compat.as_current_event(Event(2)):  # a table write goes to the event's partition
        store["card-1"] = b"v"
    db = compat.partition_db(store, 2)
    assert list(db.items()) == [(encode_key("card-1"), encode_value(b"v"))]
    assert list(compat.partition_db(store, 1).items()) == []
    memory = faust.App("compat-memory").Table("compat-memory", value_type=bytes).data
    assert compat.partition_db(memory, 2) is None  # not kept per partition


def test_as_current_event_is_faust_s_current_event_within_the_block():
    outer, inner = Event(1), Event(2)
    assert faust.current_event() is None
    with compat.as_current_event(outer):
        assert faust.current_event() is outer
        with compat.as_current_event(inner):
            assert faust.current_event() is inner
        assert faust.current_event() is outer
    assert faust.current_event() is None


# river


@pytest.mark.parametrize(
    ("model", "multiclass"),
    [
        (linear_model.LogisticRegression(), False),
        (naive_bayes.GaussianNB(), True),
        (preprocessing.StandardScaler() | linear_model.LogisticRegression(), False),
        (preprocessing.StandardScaler() | naive_bayes.GaussianNB(), True),
        (linear_model.LinearRegression(), False),
    ],
)
def test_is_multiclass(model, multiclass):
    assert compat.is_multiclass(model) is multiclass


async def test_read_committed_makes_only_that_app_s_faust_consumer_read_committed() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    marked = faust.App("compat-read-committed", broker="kafka://127.0.0.1:1")
    plain = faust.App("compat-read-uncommitted", broker="kafka://127.0.0.1:1")
    compat.read_committed(marked)
    compat.read_committed(marked)  # (idempotent: wrapped once)
    assert getattr(AIOKafkaConsumerThread._create_worker_consumer, "read_committed", False)

    def level(app: faust.App) -> str:
        thread = AIOKafkaConsumerThread(app.consumer)
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._isolation_level

    assert level(marked) == "read_committed"
    assert level(plain) == "read_uncommitted"
