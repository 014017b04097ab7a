"""The engine on an Avro events topic, without a broker or a registry: a read's schemas loaded
before it is stepped, a registry that does not answer pausing it, and bad messages dead-lettered."""

import io
import json
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from fastavro import parse_schema, schemaless_writer

from agents.engine import Engine
from agents.shards import Shards
from app import parts
from app.config import Config
from app.kafka.registry import RegistryClient, RegistryUnavailable
from app.settings import Settings
from tests.unit.fakes import RecordingOutbox, fake_shard_tables, record

MODEL = "StandardScaler | LogisticRegression"
NAME = "StandardScaler-LogisticRegression"
URL = "http://registry.test/apis/ccompat/v7"
SCHEMA = {
    "type": "record",
    "name": "E",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "ts", "type": "double"},
        {"name": "a", "type": "double"},
        {"name": "y", "type": ["null", "boolean"], "default": None},
    ],
}
DOWN = "the schema registry at http://registry.test/apis/ccompat/v7 cannot be reached: refused"


class FakeRegistry(RegistryClient):
    """The real client, its requests answered here: ``down`` requests fail first, then the
    schemas of ``served`` are served and other ids are not found; time is simulated."""

    def __init__(self, served: dict[int, dict], down: int = 0) -> None:
        self.t = 0.0
        super().__init__(URL, clock=lambda: self.t, sleep=self._sleep)
        self.served = served
        self.down = down
        self.slept: list[float] = []
        self.on_sleep = lambda: None

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        self.on_sleep()

    async def _request(self, method: str, path: str, body=None):
        self.requests += 1
        if self.down > 0:
            self.down -= 1
            raise RegistryUnavailable(DOWN)
        schema_id = int(path.rsplit("/", 1)[1])
        if schema_id in self.served:
            return 200, {"schema": json.dumps(self.served[schema_id])}, ""
        return 404, {"error_code": 40403, "message": "not found"}, ""


@pytest.fixture
def make_engine(app):
    def make(registry: FakeRegistry, timeout: float = 300.0) -> Engine:
        config = Config.build(
            Settings(
                id="unit",
                model=MODEL,
                checkpoint_every=1000,
                checkpoint_seconds=2.0,
                events_map={"format": "avro", "id": "id", "time": "ts", "label": "y"},
                schema_registry_url=URL,
                schema_registry_timeout=timeout,
            )
        )
        tables = fake_shard_tables(config.specs)
        keeper = Shards(config, tables)
        engine = Engine(app, config, keeper, parts.topics, tables.counters, registry)
        engine.outbox = RecordingOutbox()
        engine.consumer = SimpleNamespace(highwater=lambda tp: None)
        for topic in (engine.source, "predictions", "predictions-shadow", "events-dlq"):
            engine.partitions[topic] = 1
        engine.partitions["unit-join"] = 1
        keeper.own({0})
        return engine

    return make


def wire(schema_id: int, i: int) -> bytes:
    out = io.BytesIO()
    value = {"id": f"e{i}", "ts": float(i), "a": float(i % 7), "y": i % 2 == 0}
    schemaless_writer(out, parse_schema(SCHEMA), value)
    return b"\x00" + schema_id.to_bytes(4, "big") + out.getvalue()


def learned(engine: Engine) -> int:
    return engine.keeper.live[0].models.models[NAME].n_learned


def dead_letters(engine: Engine) -> list[tuple[bytes, bytes]]:
    return [(m[3], dict(m[4])["reason"]) for m in engine.outbox.to("events-dlq")]


def read_of(records: list) -> dict:
    return {TopicPartition("events", 0): records}


async def test_a_read_waits_for_an_unreachable_registry_then_is_learned_whole(make_engine):
    registry = FakeRegistry({3: SCHEMA}, down=3)
    engine = make_engine(registry)
    seen = []
    registry.on_sleep = lambda: seen.append(
        (learned(engine), len(dead_letters(engine)), engine.keeper.live[0].events_offset)
    )
    records = [record(i, wire(3, i)) for i in range(40)]
    assert await engine.take_read(read_of(records)) is None
    # paused three times, with backoff, nothing stepped and nothing dead-lettered meanwhile
    assert registry.slept == [0.5, 1.0, 2.0]
    assert seen == [(0, 0, -1)] * 3
    assert engine.registry_waits == 3 and engine.registry_paused is None
    # then every event, once; the schema asked once (three failures, one answer)
    assert learned(engine) == 40 and engine.keeper.live[0].events_offset == 39
    assert dead_letters(engine) == [] and registry.requests == 4
    # the next read: the schema is cached, nothing asked
    assert await engine.take_read(read_of([record(40, wire(3, 40))])) is None
    assert learned(engine) == 41 and registry.requests == 4


async def test_a_registry_down_past_the_timeout_stops_the_worker_and_a_restart_loses_nothing(
    make_engine,
):
    registry = FakeRegistry({3: SCHEMA}, down=1000)
    engine = make_engine(registry, timeout=5.0)
    records = [record(i, wire(3, i)) for i in range(10)]
    error = await engine.take_read(read_of(records))
    assert type(error) is RegistryUnavailable
    assert str(error) == (
        f"engine: stopping, reading paused too long: {DOWN}; still so after 5 s "
        "(STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT=5)"
    )
    assert registry.slept == [0.5, 1.0, 2.0, 1.5]  # (the last wait: what is left of 5 s)
    assert learned(engine) == 0 and engine.keeper.live[0].events_offset == -1
    assert dead_letters(engine) == []
    # the registry answers again: the same read (a restart reads it again) is learned whole
    registry.down = 0
    assert await engine.take_read(read_of(records)) is None
    assert learned(engine) == 10 and dead_letters(engine) == []


async def test_unknown_ids_and_messages_not_in_the_wire_format_are_dead_lettered_the_rest_learned(
    make_engine,
):
    registry = FakeRegistry({3: SCHEMA})
    engine = make_engine(registry)
    unknown = wire(8, 1)
    records = [
        record(0, wire(3, 0)),
        record(1, unknown),
        record(2, b'{"id": "e2"}'),
        record(3, b"\x00\x00"),
        record(4, None),  # a tombstone: counted, skipped
        record(5, wire(3, 5)),
    ]
    assert await engine.take_read(read_of(records)) is None
    assert dead_letters(engine) == [
        (
            unknown,
            f"schema id 8 is not known to the schema registry at {URL} (HTTP 404, error code "
            "40403)".encode(),
        ),
        (
            b'{"id": "e2"}',
            b"not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 "
            b"(it looks like JSON)",
        ),
        (
            b"\x00\x00",
            b"not in Confluent's Avro wire format: 2 bytes, shorter than its 5-byte header "
            b"(magic byte 0, 4-byte schema id)",
        ),
    ]
    assert learned(engine) == 2 and engine.keeper.live[0].events_offset == 5
    assert engine.counters.totals()["tombstones"] == 1
    assert registry.requests == 2  # id 3 and id 8, once each
