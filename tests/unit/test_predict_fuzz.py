"""``POST /predict/`` in-process, fuzzed: every body is answered (events, or a 400 naming what
is wrong), never an exception; the scorer then answers every event it took, changing nothing.

The bodies are ``tests/predict_bodies.py``'s, from a seed the failure message names
(``PREDICT_FUZZ_SEED`` picks another)."""

import os
import pickle
import time
from types import SimpleNamespace

import orjson
import pytest

from agents.shards import Scorer
from app.config import Config
from app.contracts.intake import Intake
from app.features.encode import one_hot
from app.models.shard import ShardModels
from app.settings import Settings
from app.web.predict import Refused, read_events
from tables.windows import ShardWindows
from tests.predict_bodies import bodies
from tests.unit.fakes import fake_table

SEED = int(os.environ.get("PREDICT_FUZZ_SEED", "20261207"))
BODIES = 30_000
MOST, MOST_BYTES, MAX_FUTURE = 20, 8192, 3600.0
KEYS = [f"card-{i}" for i in range(8)]


def scorer(config: Config) -> tuple[Scorer, list[SimpleNamespace]]:
    """A Scorer over two shards held here, each with windows and models that learned a few
    labelled events (no Faust: the app and the keeper are stand-ins)."""
    shards = []
    for shard in range(2):
        windows = ShardWindows(shard, -1, 100, config.recipe, fake_table(f"w{shard}"))
        models = ShardModels.fresh(shard, list(config.specs))
        shards.append(SimpleNamespace(windows=windows, models=models))
    keeper = SimpleNamespace(read_by_engine=lambda shard: shards[shard])
    out = Scorer(SimpleNamespace(rebalancing=False), keeper, 2)
    for i in range(200):
        key = KEYS[i % len(KEYS)]
        event = {"id": f"t{i}", "key": key, "ts": 1000.0 + i, "y": i % 3 == 0}
        live = shards[out.shard_of(event)]
        x = {"amount": float(i % 13), "hour": float(i % 24), "merchant": "web"}
        live.windows.update(key, event["ts"], x)
        live.models.take_event({**event, "x": one_hot(x)}, time.time())
    return out, shards


def learned(shards: list[SimpleNamespace]) -> list:
    """What learning or counting would change: each shard's windows and models, pickled
    counters."""
    return [
        (
            pickle.dumps(s.windows.cache),
            [(m.n_learned, m.n_predicted, m.n_scored) for m in s.models.models.values()],
        )
        for s in shards
    ]


@pytest.mark.parametrize("model", ["StandardScaler | LogisticRegression", "GaussianNB"])
def test_every_body_is_answered_or_refused_with_a_reason(model):
    config = Config.build(Settings(model=model, max_future=MAX_FUTURE))
    intake = Intake.configured(config)
    score, shards = scorer(config)
    before = learned(shards)
    now = time.time()
    statuses: dict[int, int] = {}
    for n, body in enumerate(bodies(SEED, BODIES, KEYS, now, MOST, MOST_BYTES, MAX_FUTURE)):
        where = f"seed {SEED}, body {n} ({body.kind}): {body.data[:200]!r}"
        try:
            events, _, many = read_events(body.data, intake, now, MOST, MOST_BYTES)
            answers = [score.score(e, all_models=True) for e in events]
            orjson.dumps(answers, option=orjson.OPT_SERIALIZE_NUMPY)
            status, error = 200, None
        except Refused as exc:
            status, error = exc.status, exc.body.get("error")
            assert status == 400 and type(error) is str and error, where
        statuses[status] = statuses.get(status, 0) + 1
        if body.expect is not None:
            assert status == body.expect, f"{where}: {error}"
        if status == 400 and body.field is not None:
            assert body.field in error, f"{where}: {error!r} does not name {body.field}"
        if status == 200:
            assert [a["id"] for a in answers] == [e["id"] for e in events], where
            assert len(events) == 1 or many, where
    assert learned(shards) == before
    assert statuses[200] > BODIES // 10 and statuses[400] > BODIES // 2, statuses


@pytest.mark.parametrize("model", ["StandardScaler | LogisticRegression"])
def test_with_an_events_mapping_every_body_is_answered_or_refused(model):
    # the same bodies read through a mapping: fields become features by their path, so which
    # body is good differs; none may raise, and a refusal says why
    mapping = {"id": "id", "key": "key", "time": "ts", "label": "y"}
    config = Config.build(Settings(model=model, max_future=MAX_FUTURE, events_map=mapping))
    intake = Intake.configured(config)
    score, shards = scorer(config)
    before = learned(shards)
    now = time.time()
    statuses: dict[int, int] = {}
    for n, body in enumerate(bodies(SEED, BODIES // 3, KEYS, now, MOST, MOST_BYTES, MAX_FUTURE)):
        where = f"seed {SEED}, body {n} ({body.kind}): {body.data[:200]!r}"
        try:
            events, _, _ = read_events(body.data, intake, now, MOST, MOST_BYTES)
            for event in events:
                orjson.dumps(score.score(event, all_models=True))
            status = 200
        except Refused as exc:
            status, error = exc.status, exc.body.get("error")
            assert status == 400 and type(error) is str and error, where
        statuses[status] = statuses.get(status, 0) + 1
    assert learned(shards) == before
    assert statuses[200] > BODIES // 30 and statuses[400] > BODIES // 6, statuses


def test_events_nested_deeper_than_orjson_writes_are_refused_naming_the_field():
    # orjson reads 1024 levels but writes 255: the body was written again for the intake, and
    # a feature nested 300 deep raised TypeError (a 500)
    intake = Intake(None, None, 3600.0, lambda y: None)
    body = b'{"id": "a", "key": "k", "ts": 5, "x": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}"
    with pytest.raises(Refused) as refused:
        read_events(body, intake, 9.0, 10, 99_999)
    assert refused.value.status == 400
    assert refused.value.body == {
        "error": "event 0: x['a'] must be a number, string or bool, got list",
        "index": 0,
    }
