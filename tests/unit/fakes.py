"""Stand-ins for the producer and the tables, where a unit test needs neither Kafka nor Faust."""

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from aiokafka.producer.message_accumulator import BatchBuilder

from tables.checkpoints import Checkpoints
from tables.counters import Counters
from tables.live_shard import ShardTables


class HeldProducer:
    """A producer whose deliveries Kafka acknowledges only when the test says so."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16 * 1024, 0)

    async def send_batch(self, batch, topic, *, partition):
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


async def until(condition, turns: int = 100) -> None:
    """Let the event loop run until ``condition()`` holds; fail after ``turns`` turns."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def settle(turns: int = 100) -> None:
    """Let the event loop run ``turns`` turns: enough for a coroutine that waits only on fakes
    to reach the point where it waits (for a test that checks that something did not happen,
    without a wall-clock sleep)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def start_flush(producer: HeldProducer, outbox, batches: int, timeout=None) -> asyncio.Task:
    """Start ``outbox.flush(timeout)`` and return it once ``producer`` holds ``batches``."""
    task = asyncio.ensure_future(outbox.flush(timeout))
    await until(lambda: len(producer.deliveries) == batches)
    return task


def acknowledge(future: asyncio.Future, offset: int) -> None:
    future.set_result(SimpleNamespace(offset=offset))


class FakeStore(dict):
    """A table's store: decoded keys and values, and the changelog offset it was told. Its one
    partition reads as rocksdict's does (``tables.direct.stored``)."""

    persisted = None
    use_rocksdict = True
    offset_key = b"__faust\0offset__"

    def _encode_key(self, key) -> bytes:
        return str(key).encode()

    def _encode_value(self, value: bytes) -> bytes:
        return value

    def _decode_key(self, raw: bytes) -> str:
        return raw.decode()

    def _decode_value(self, raw: bytes) -> bytes:
        return raw

    def _db_for_partition(self, partition: int) -> SimpleNamespace:
        def items(from_key=None, read_opt=None):
            encoded = sorted((self._encode_key(k), v) for k, v in self.items())
            return iter([(k, v) for k, v in encoded if from_key is None or k >= from_key])

        return SimpleNamespace(items=items)

    def set_persisted_offset(self, tp, offset: int) -> None:
        self.persisted = (tp, offset)


class FakeOutbox:
    def __init__(self):
        self.messages = []

    def add(self, topic, partition, key, value):
        self.messages.append((topic, partition, key, value))


def fake_table(name: str) -> SimpleNamespace:
    """A Faust table as tables.direct and tables.windows use it: its store is a dict."""
    store = FakeStore()
    changelog = SimpleNamespace(get_topic_name=lambda: f"{name}-changelog")
    return SimpleNamespace(data=store, get=store.get, changelog_topic=changelog)


class RecordingSlot:
    """An outbox slot that keeps what is added: ``(topic, partition, key, value, headers)``."""

    def __init__(self, topic: str, partition: int, messages: list) -> None:
        self.topic, self.partition, self.messages = topic, partition, messages

    def add(self, key, value, headers=()) -> None:
        self.messages.append((self.topic, self.partition, key, value, list(headers)))


class RecordingOutbox:
    """The engine's outbox, keeping every message instead of batching it for Kafka."""

    def __init__(self) -> None:
        self.messages: list[tuple] = []
        self.sends = 0  # hand-overs to the producer

    def slot(self, topic: str, partition: int) -> RecordingSlot:
        return RecordingSlot(topic, partition, self.messages)

    def add(self, topic, partition, key, value, headers=()) -> None:
        self.messages.append((topic, partition, key, value, list(headers)))

    async def send(self) -> None:
        """A hand-over (what it holds stays: :meth:`to` reads it)."""
        self.sends += 1

    def to(self, topic: str) -> list[tuple]:
        return [m for m in self.messages if m[0] == topic]


def record(offset: int, value: bytes, key: bytes | None = None, headers=()) -> SimpleNamespace:
    """An events record as the engine's consumer hands it over (aiokafka's C record)."""
    return SimpleNamespace(
        offset=offset, key=key, value=value, timestamp=1_000_000, headers=list(headers)
    )


def fake_counters() -> Counters:
    """Counters kept in dicts instead of Faust tables."""
    return Counters(defaultdict(int), defaultdict(list))


def fake_shard_tables(
    specs, checkpoints_table=None, windows_table=None, versions_table=None, keep=10
) -> ShardTables:
    """What a shard writes to, as dicts: checkpoints (secret "s"), key windows, counters, and
    the versions table if given."""
    checkpoints = Checkpoints(specs, "s", checkpoints_table or fake_table("shard-checkpoints"))
    return ShardTables(
        checkpoints=checkpoints,
        windows=windows_table or fake_table("key-windows"),
        counters=fake_counters(),
        anchor="unit-scoring",
        versions=versions_table,
        keep=keep,
    )
