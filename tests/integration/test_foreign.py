"""A team's topics as they are: a foreign shape mapped by the config file, learned exactly as
River learns the mapped rows offline; what the mapping cannot read, dead-lettered with the
reason; a transform that drops and one that raises."""

import datetime as dt

import orjson
import pytest
from river import datasets

from app.models.spec import parse_spec
from tests.integration.harness import wait_for
from tests.integration.reference import assert_worker_equals, with_delayed_labels

pytestmark = pytest.mark.integration

LR = parse_spec("StandardScaler | LogisticRegression")
START = dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))

CONFIG = """
transform = "tests.unit.transforms:foreign"

[events]
id = "order.ref"
time = "order.placed"
time_format = "iso8601"
label = "verdict"

[labels]
id = "order_ref"
label = "outcome.fraud"
time = "at_ms"
time_format = "epoch_ms"
"""


def order(i: int, x: dict, y=None, **extra) -> dict:
    placed = (START + dt.timedelta(seconds=i)).isoformat()  # 2026-03-01T00:00:00+02:00
    value = {"order": {"ref": f"o-{i}", "placed": placed}, "page": x, **extra}
    if y is not None:
        value["verdict"] = y
    return value


def test_a_foreign_topic_and_its_labels_are_learned_as_river_learns_the_mapped_rows(
    pipeline_factory, tmp_path
):
    config = tmp_path / "streamlearn.toml"
    config.write_text(CONFIG)
    pipeline = pipeline_factory(partitions=1, model=LR.text, config=str(config))
    worker = pipeline.start_worker()
    rows = [(orjson.loads(orjson.dumps(x)), y) for x, y in list(datasets.Phishing())[:300]]
    messages = [order(i, x, y) for i, (x, y) in enumerate(rows[:200])]
    messages += [order(200 + i, x) for i, (x, _) in enumerate(rows[200:])]  # labels come later
    bad = [
        (
            b'{"order": {"placed": "2026-03-01T00:00:00Z"}, "page": {}}',
            b"missing field 'order.ref'",
        ),
        (
            orjson.dumps(order(900, {}) | {"order": {"ref": "b1", "placed": "soon"}}),
            b"time (order.placed) is not ISO-8601: 'soon'",
        ),
        (
            orjson.dumps(order(901, {}) | {"tags": ["a", "b"]}),
            b"feature 'tags' is a list, not a number, string or bool",
        ),
        (orjson.dumps(order(902, {}, boom=1)), b"transform raised ValueError: cannot take o-902"),
    ]
    dropped = [orjson.dumps(order(903, {}, drop=True))]
    pipeline.send(
        pipeline.events, [orjson.dumps(m) for m in messages] + [raw for raw, _ in bad] + dropped
    )
    wait_for(lambda: worker.models() and worker.models()[0]["n_predicted"] == 300, what="300")
    at_ms = int((START + dt.timedelta(seconds=400)).timestamp() * 1000)
    labels = [
        orjson.dumps({"order_ref": f"o-{200 + i}", "outcome": {"fraud": y}, "at_ms": at_ms + i})
        for i, (_, y) in enumerate(rows[200:])
    ]
    labels.append(orjson.dumps({"order_ref": "o-1", "at_ms": at_ms}))  # no outcome.fraud
    pipeline.send(pipeline.labels, labels)
    wait_for(lambda: worker.models()[0]["n_learned"] == 300, what="300 learned")

    # River offline over the mapped rows: features named by their path, test-then-train on the
    # first 200, the last 100 predicted on arrival and learned in the order of their labels
    mapped = [({f"page.{k}": v for k, v in x.items()}, y) for x, y in rows]
    model, metric = with_delayed_labels(LR, mapped[:200], mapped[200:])
    assert_worker_equals(pipeline, worker, LR, model, metric, 300)

    predictions = [orjson.loads(r.value) for r in pipeline.read(pipeline.predictions, 300)]
    assert predictions[0]["id"] == "o-0" and predictions[0]["ts"] == START.timestamp()
    dead = pipeline.read(f"{pipeline.events}-dlq", len(bad))
    assert [(r.value, dict(r.headers)["reason"]) for r in dead] == bad
    (dead_label,) = pipeline.read(f"{pipeline.labels}-dlq", 1)
    assert dict(dead_label.headers)["reason"] == b"missing field 'outcome.fraud'"
    counters = wait_for(lambda: (c := worker.stats()["counters"]).get("transform_dropped") and c)
    assert counters["transform_dropped"] == 1 and counters["transform_errors"] == 1
    assert counters["dead_letters"] == 3
