"""The engine's per-record path without a broker: records in, models, windows and output out."""

import asyncio
import io
import time

import orjson
import pytest
from aiokafka import TopicPartition
from fastavro import parse_schema, schemaless_reader

from agents import engine as engine_module
from agents.engine import Engine, EngineError
from agents.shards import Shards
from app import parts
from app.config import Config
from app.contracts import prediction_avro
from app.contracts.transform import TransformError
from app.settings import Settings
from tables.live_shard import LiveShard
from tests.unit.fakes import RecordingOutbox, fake_shard_tables, record

MODEL = "StandardScaler | LogisticRegression"
NAME = "StandardScaler-LogisticRegression"


@pytest.fixture
def make_engine(app, monkeypatch):
    """An engine owning shard 0 (fresh models), with its tables as dicts and a recording outbox."""

    def make(prediction_ids: dict[str, int] | None = None, **settings) -> Engine:
        settings = {"checkpoint_every": 1000, "checkpoint_seconds": 2.0, "model": MODEL, **settings}
        config = Config.build(Settings(id="unit", **settings))
        tables = fake_shard_tables(config.specs)
        keeper = Shards(config, tables)
        engine = Engine(
            app, config, keeper, parts.topics, tables.counters, prediction_ids=prediction_ids
        )
        engine.outbox = RecordingOutbox()
        for topic in (
            engine.source,
            "predictions",
            "predictions-shadow",
            "events-dlq",
            "unit-join",
        ):
            engine.partitions[topic] = 1
        keeper.own({0})
        return engine

    return make


def event(i: int, key: str | None = None, y=True, **x) -> bytes:
    value = {"id": f"e{i}", "key": key, "ts": float(i), "x": x or {"a": float(i)}}
    if y is not None:
        value["y"] = y
    return orjson.dumps(value)


def shard(engine: Engine) -> LiveShard:
    return engine.keeper.live[0]


def learned(engine: Engine) -> int:
    return shard(engine).models.models[NAME].n_learned


def dead_letters(engine: Engine) -> list[tuple[bytes, dict]]:
    return [(m[3], dict(m[4])) for m in engine.outbox.to("events-dlq")]


def dead_letter_keys(engine: Engine) -> list[bytes | None]:
    return [m[2] for m in engine.outbox.to("events-dlq")]


def test_a_labelled_event_is_predicted_learned_and_its_offset_kept(make_engine):
    engine = make_engine()
    assert engine.take(0, [record(0, event(0)), record(1, event(1, y=False))]) == 2
    assert learned(engine) == 2
    predictions = [orjson.loads(m[3]) for m in engine.outbox.to("predictions")]
    assert [p["id"] for p in predictions] == ["e0", "e1"]
    assert predictions[1]["version"] == 0 and predictions[1]["model"] == NAME  # (none kept yet)
    live = shard(engine)
    assert live.events_offset == 1 and live.taken == 2 and engine.n_events == 2
    assert engine.outbox.to("unit-join") == []  # nothing to park: the labels came inline


def test_records_taken_already_are_skipped(make_engine):
    engine = make_engine()
    engine.take(0, [record(0, event(0)), record(1, event(1))])
    assert engine.take(0, [record(0, event(0)), record(1, event(1)), record(2, event(2))]) == 1
    assert learned(engine) == 3 and shard(engine).events_offset == 2


def test_a_malformed_record_is_dead_lettered_with_its_bytes_and_the_shard_goes_on(make_engine):
    engine = make_engine()
    before = counts(engine)["dead_letters:0"]
    engine.take(0, [record(0, b"garbage", key=b"k"), record(1, event(1))])
    ((value, headers),) = dead_letters(engine)
    assert value == b"garbage"
    assert headers["reason"].startswith(b"not JSON")
    assert (headers["source_topic"], headers["source_offset"]) == (b"events", b"0")
    assert learned(engine) == 1 and shard(engine).events_offset == 1
    assert counts(engine)["dead_letters:0"] == before + 1


def test_a_label_the_models_cannot_learn_is_dead_lettered_before_any_model_sees_it(make_engine):
    engine = make_engine()
    engine.take(0, [record(0, event(0, y="yes"))])
    ((_, headers),) = dead_letters(engine)
    assert headers["reason"].startswith(b"y must be true/false (or 1/0) for the binary")
    live_model = shard(engine).models.models[NAME]
    assert (live_model.n_learned, live_model.n_predicted) == (0, 0)
    assert engine.outbox.to("predictions") == []


def test_a_model_that_raises_dead_letters_the_event_and_the_shard_goes_on(make_engine):
    engine = make_engine()
    live_model = shard(engine).models.models[NAME]
    real = live_model._predict
    live_model._predict = lambda x: 1 / 0 if "boom" in x else real(x)
    before = counts(engine)["model_errors:0"]
    engine.take(0, [record(0, event(0, boom=1.0)), record(1, event(1))])
    ((value, headers),) = dead_letters(engine)
    assert headers["reason"] == b"model failed on event 'e0': ZeroDivisionError: division by zero"
    assert value == event(0, boom=1.0)
    assert live_model.n_learned == 1 and shard(engine).events_offset == 1
    assert counts(engine)["model_errors:0"] == before + 1


def test_keyed_events_get_their_windows_unkeyed_ones_none(make_engine):
    engine = make_engine(window=10.0, hop_window=10.0, hop_step=5.0, window_expires=20.0)
    engine.take(
        0,
        [
            record(0, event(1, key="k", y=None, a=2.0)),
            record(1, event(3, key="k", y=None, a=4.0)),
            record(2, event(4, key=None, y=None, a=8.0)),
        ],
    )
    parked = [orjson.loads(m[3]) for m in engine.outbox.to("unit-join")]
    assert [p["id"] for p in parked] == ["e1", "e3", "e4"]
    assert parked[1]["x"] == {
        "a": 4.0,
        "count_tumbling_10s": 2,
        "a_sum_tumbling_10s": 6.0,
        "a_mean_tumbling_10s": 3.0,
        "count_hopping_10s": 2,
        "a_sum_hopping_10s": 6.0,
        "a_mean_hopping_10s": 3.0,
        "secs_since_last": 2.0,
    }
    assert parked[2]["x"] == {"a": 8.0}  # no key: no windows
    assert all(p["shard"] == 0 and p["kind"] == "park" for p in parked)
    assert learned(engine) == 0 and shard(engine).windows.cache["k"]["t"] == 3.0


def test_records_of_a_revoked_shard_are_not_taken(make_engine):
    engine = make_engine()
    live = shard(engine)
    engine.keeper.own(set())  # revoked: dropped
    assert engine.take(0, [record(0, event(0))]) == 0
    assert engine.outbox.messages == [] and live.models.models[NAME].n_learned == 0
    assert live.events_offset == -1 and not live.reading


def test_copies_the_rekey_stage_sent_again_are_dropped_by_their_origin(make_engine):
    engine = make_engine(rekey=True)
    assert engine.source == "unit-rekeyed"
    records = [
        record(0, event(0), headers=[("sl-src", b"2:5")]),
        record(1, event(1), headers=[("sl-src", b"1:0")]),
        record(2, event(0), headers=[("sl-src", b"2:5")]),  # sent again after a crash
        record(3, event(7), headers=[("sl-src", b"2:4")]),  # older than one taken
        record(4, b"garbage", key=b"card-9", headers=[("sl-src", b"2:6"), ("sl-key", b"raw")]),
        record(5, b"[1]", key=b"r:2:7", headers=[("sl-src", b"2:7")]),  # raw had no key
    ]
    assert engine.take(0, records) == 6  # offsets consumed, whether learned or not
    assert learned(engine) == 2
    assert shard(engine).models.n_duplicates == 2
    assert shard(engine).models.origins == {"e0": 5, "r1": 0, "r2": 7}
    (_, headers), _ = dead_letters(engine)  # its origin, not the re-keyed copy's offset
    assert (headers["source_topic"], headers["source_partition"]) == (b"events", b"2")
    assert headers["source_offset"] == b"6"
    # and the raw message's own Kafka key (none: none), not the key it was re-keyed by
    assert dead_letter_keys(engine) == [b"raw", None]


def test_an_event_stamped_beyond_max_future_is_dead_lettered_a_near_one_learned(make_engine):
    engine = make_engine(max_future=600.0)
    now = time.time()
    ahead = orjson.dumps({"id": "f", "key": "k", "ts": now + 3600, "x": {"a": 1.0}, "y": True})
    near = orjson.dumps({"id": "n", "key": "k", "ts": now + 60, "x": {"a": 1.0}, "y": True})
    engine.take(0, [record(0, ahead), record(1, near)])
    ((value, headers),) = dead_letters(engine)
    assert value == ahead
    assert b"more than STREAMLEARN_MAX_FUTURE, 600 s" in headers["reason"]
    assert learned(engine) == 1
    assert list(shard(engine).windows.cache) == ["k"]  # the refused one counted nowhere
    assert shard(engine).windows.cache["k"]["t"] == now + 60


def test_a_mapped_topic_is_read_as_its_mapping_says_and_what_it_cannot_read_dead_lettered(
    make_engine,
):
    table = {"id": "ref", "key": "card.id", "time": "at", "time_format": "epoch_ms", "label": "y"}
    engine = make_engine(events_map=table)
    now_ms = int(time.time() * 1000)
    good = orjson.dumps({"ref": 7, "card": {"id": "c1"}, "at": now_ms, "amount": 2.0, "y": True})
    no_time = orjson.dumps({"ref": 8, "card": {"id": "c1"}, "amount": 2.0, "y": True})
    unlabelled = orjson.dumps({"ref": 9, "card": {"id": "c2"}, "at": now_ms, "amount": 1.0})
    engine.take(0, [record(0, good), record(1, no_time), record(2, unlabelled)])
    predictions = [orjson.loads(m[3]) for m in engine.outbox.to("predictions")]
    assert [(p["id"], p["key"], p["ts"]) for p in predictions] == [
        ("7", "c1", now_ms / 1000),
        ("9", "c2", now_ms / 1000),
    ]
    ((value, headers),) = dead_letters(engine)
    assert value == no_time and headers["reason"] == b"missing field 'at'"
    assert learned(engine) == 1
    (parked,) = [orjson.loads(m[3]) for m in engine.outbox.to("unit-join")]
    assert parked["id"] == "9" and parked["x"]["amount"] == 1.0


def test_a_transform_that_drops_is_counted_one_that_raises_or_breaks_dead_letters(make_engine):
    engine = make_engine(transform="tests.unit.transforms:drop_small")
    before = counts(engine)["transform_dropped:0"]
    engine.take(0, [record(0, event(0, amount=0.5)), record(1, event(1, amount=200.0))])
    assert counts(engine)["transform_dropped:0"] == before + 1
    (prediction,) = [orjson.loads(m[3]) for m in engine.outbox.to("predictions")]
    assert prediction["id"] == "e1" and learned(engine) == 1
    raising = make_engine(transform="tests.unit.transforms:explode")
    raising.take(0, [record(0, event(0))])
    ((_, headers),) = dead_letters(raising)
    assert headers["reason"] == b"transform raised KeyError: 'merchant'"
    breaking = make_engine(transform="tests.unit.transforms:break_it")
    breaking.take(0, [record(0, event(0))])
    ((_, headers),) = dead_letters(breaking)
    assert headers["reason"].startswith(b"transform returned an invalid event: x['bad']")
    assert learned(raising) == learned(breaking) == 0


def test_a_transform_returning_what_json_cannot_hold_dead_letters_the_event_only(make_engine):
    engine = make_engine(transform="tests.unit.transforms:unwritable")
    engine.take(0, [record(i, event(i)) for i in range(3)])
    reasons = [headers["reason"] for _, headers in dead_letters(engine)]
    assert len(reasons) == 3 and learned(engine) == 0
    assert all(r.startswith(b"transform returned an event JSON cannot hold: ") for r in reasons)
    assert b"str is not valid UTF-8" in reasons[0] and b"key must be str" in reasons[1]
    assert b"not JSON serializable" in reasons[2]
    engine.take(0, [record(3, event(3))])  # the worker goes on: the next event is learned
    assert learned(engine) == 1 and len(dead_letters(engine)) == 3


def test_a_transform_that_cannot_be_found_is_a_start_up_error(make_engine):
    with pytest.raises(TransformError, match="tests.unit.transforms has no function 'nope'"):
        make_engine(transform="tests.unit.transforms:nope")


def counts(engine: Engine):
    """The engine's counters (``"<counter>:<partition>"`` to int)."""
    return engine.counters.counts


class ReassigningOutbox(RecordingOutbox):
    """An outbox whose first hand-over lets a rebalance happen, as an ``await`` in the engine's
    read loop does: shard 0 is revoked (its checkpoint not written) and assigned again."""

    def __init__(self, keeper: Shards) -> None:
        super().__init__()
        self.keeper = keeper
        self.sends = 0

    async def send(self) -> None:
        self.sends += 1
        if self.sends == 1:
            await self.keeper.revoke({0})
            await self.keeper.load({0})  # restored from the table: from offset 0 again


class Positions:
    """The engine's consumer as ``Engine.read`` uses it."""

    def __init__(self) -> None:
        self.sought: list[tuple[int, int]] = []

    def assign(self, tps) -> None:
        pass

    def seek(self, tp, offset: int) -> None:
        self.sought.append((tp.partition, offset))

    def highwater(self, tp) -> int:
        return 1000


async def test_a_read_made_before_the_shard_was_restored_again_is_not_stepped(make_engine):
    engine = make_engine()
    keeper = engine.keeper
    engine.outbox = ReassigningOutbox(keeper)
    engine.consumer = Positions()
    engine.ready.set()
    keeper.reader = engine
    records = [record(i, event(i)) for i in range(3000)]  # a backlog read: slices of 1,000
    assert await engine.take_read({TopicPartition(engine.source, 0): records}) is None
    # the first slice went into the shard that was dropped; its successor restarts at offset 0
    # and is read from there: the rest of the old read would have left offsets 0-999 unlearned
    assert engine.consumer.sought == [(0, 0)]
    assert shard(engine).events_offset == -1 and learned(engine) == 0
    assert await engine.take_read({TopicPartition(engine.source, 0): records}) is None
    assert shard(engine).events_offset == 2999 and learned(engine) == 3000


def test_the_engine_writes_the_champion_s_prediction_once_and_the_challengers_to_the_shadow(
    make_engine,
):
    engine = make_engine(model="LogisticRegression; GaussianNB")
    values = [
        orjson.dumps({"id": f"e{i}", "key": None, "ts": float(i), "x": {"a": 1.0}, "y": True})
        for i in range(5)
    ]
    assert engine.take(0, [record(i, v) for i, v in enumerate(values)]) == 5
    champion = [orjson.loads(m[3]) for m in engine.outbox.to("predictions")]
    shadow = [orjson.loads(m[3]) for m in engine.outbox.to("predictions-shadow")]
    assert [(p["id"], p["model"]) for p in champion] == [
        (f"e{i}", "LogisticRegression") for i in range(5)
    ]
    assert [(p["id"], p["model"]) for p in shadow] == [(f"e{i}", "GaussianNB") for i in range(5)]


def test_predictions_format_avro_writes_the_json_predictions_values_in_the_wire_format(
    make_engine,
):
    """The same records through an engine writing JSON and one writing Avro (the schema ids as
    registered at start-up): the same predictions, champion's and challengers', the Avro ones
    under each topic's schema id."""
    values = [
        orjson.dumps(
            {"id": f"e{i}", "key": f"k{i % 2}", "ts": float(i), "x": {"a": i % 3 * 1.0}}
            | ({} if i % 4 == 3 else {"y": i % 3 == 1})  # (an unlabelled one: predicted, parked)
        )
        for i in range(8)
    ]
    written = {}
    for fmt, ids in (("json", None), ("avro", {"predictions": 7, "predictions-shadow": 300})):
        engine = make_engine(ids, model="LogisticRegression; GaussianNB")
        assert engine.take(0, [record(i, v) for i, v in enumerate(values)]) == 8
        written[fmt] = {t: engine.outbox.to(t) for t in ("predictions", "predictions-shadow")}
    parsed = parse_schema(prediction_avro.SCHEMA)
    for topic, schema_id in (("predictions", 7), ("predictions-shadow", 300)):
        as_json = [orjson.loads(m[3]) for m in written["json"][topic]]
        as_avro = []
        for m in written["avro"][topic]:
            assert m[3][:5] == b"\x00" + schema_id.to_bytes(4, "big")
            decoded = schemaless_reader(io.BytesIO(m[3][5:]), parsed, None)
            decoded["proba"] = [[d["label"], d["p"]] for d in decoded["proba"]]
            as_avro.append(decoded)
        assert [m[2] for m in written["avro"][topic]] == [m[2] for m in written["json"][topic]]
        assert len(as_avro) == len(as_json) == 8
        for p in as_json + as_avro:  # (milliseconds since the records' Kafka timestamp: now)
            assert type(p.pop("latency_ms")) is float
        assert as_avro == as_json
        assert [type(p["y_pred"]) for p in as_avro] == [type(p["y_pred"]) for p in as_json]
    models = [p["model"] for p in orjson_all(written["json"]["predictions-shadow"])]
    assert models == ["GaussianNB"] * 8


def orjson_all(messages: list) -> list[dict]:
    return [orjson.loads(m[3]) for m in messages]


async def test_the_engine_gives_the_loop_a_turn_every_turn_s_worth_of_events(make_engine):
    engine = make_engine()
    engine.outbox = RecordingOutbox()
    engine.consumer = Positions()
    engine.ready.set()
    engine.keeper.reader = engine
    cost = 0.0001  # seconds per event, on the engine's clock: a turn holds 20 events
    engine.clock = lambda: engine.n_events * cost
    seen: list[int] = []  # events taken each time another task ran
    reading = True

    async def another_task() -> None:
        while reading:
            seen.append(engine.n_events)
            await asyncio.sleep(0)

    async def read(first: int, n: int) -> list[int]:
        """The events taken between two turns of another task, over a read of ``n``."""
        seen.clear()
        records = [record(i, event(i)) for i in range(first, first + n)]
        await asyncio.sleep(0)
        assert await engine.take_read({TopicPartition(engine.source, 0): records}) is None
        await asyncio.sleep(0)
        return [b - a for a, b in zip(seen, seen[1:], strict=False)]

    task = asyncio.ensure_future(another_task())
    gaps = await read(0, 1500)  # (a read below BACKLOG_READ: a turn every TURN seconds)
    # 16 events in the first turn, then twice as many each turn up to the 20 a turn holds
    assert gaps[:3] == [16, 20, 20]
    assert max(gaps) == round(engine_module.TURN / cost) and sum(gaps) == 1500
    assert engine.outbox.sends == 6  # output handed over every 250 events of the read
    gaps = await read(1500, 3000)  # a backlog: a turn every BACKLOG_TURN seconds
    assert gaps[:4] == [20, 40, 80, 100]  # (from the 20 of the turn before)
    assert max(gaps) == round(engine_module.BACKLOG_TURN / cost) and sum(gaps) == 3000
    assert engine.outbox.sends == 6 + 3  # ... and every 1,000 events
    reading = False
    await task
    assert learned(engine) == 4500 and shard(engine).events_offset == 4499


async def test_a_read_s_output_is_handed_over_at_its_end_whatever_its_size(make_engine):
    # (a read of 150 records, stepped 20 at a time: the last turn holds 10, and the output
    # leaves then, not with some later read)
    engine = make_engine()
    engine.outbox = RecordingOutbox()
    engine.consumer = Positions()
    engine.ready.set()
    engine.keeper.reader = engine
    engine.clock = lambda: engine.n_events * 0.0001
    sent_at: list[int] = []
    send = engine.outbox.send

    async def recording_send() -> None:
        sent_at.append(engine.n_events)
        await send()

    engine.outbox.send = recording_send
    records = [record(i, event(i)) for i in range(150)]
    assert await engine.take_read({TopicPartition(engine.source, 0): records}) is None
    assert learned(engine) == 150 and sent_at == [150]
    more = [record(i, event(i)) for i in range(150, 170)]
    assert await engine.take_read({TopicPartition(engine.source, 0): more}) is None
    assert learned(engine) == 170 and sent_at == [150, 170]


async def test_predictions_format_avro_never_starts_without_the_registered_schema(make_engine):
    # (the worker's start-up registers it: an engine started otherwise would write JSON where
    # the team's consumers read Avro)
    avro = {"predictions_format": "avro", "schema_registry_url": "http://registry.test"}
    engine = make_engine(**avro)
    with pytest.raises(EngineError, match="the prediction schema is not registered"):
        await engine.on_start()
    assert engine.consumer is None and engine.producer is None
    engine.use_prediction_ids({"predictions": 7})
    prediction = {"id": "e0", "key": None, "model": "lr", "version": 0, "y_pred": True}
    prediction |= {"proba": None, "ts": 1.0, "latency_ms": None}
    assert engine.encode(prediction)[:5] == b"\x00\x00\x00\x00\x07"
