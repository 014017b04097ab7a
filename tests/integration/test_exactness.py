"""With one partition, what the stream teaches equals River's progressive validation, exactly."""

import orjson
import pytest
from river import datasets, evaluate

from app.commands.datasets import encode_x
from app.models.spec import parse_specs
from tests.integration.harness import wait_for
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration


def reference(spec, dataset, limit=None):
    rows = []
    for i, (x, y) in enumerate(dataset):
        if limit is not None and i == limit:
            break
        rows.append((orjson.loads(orjson.dumps(encode_x(x))), y))
    model, metric = spec.build(), spec.new_metrics()
    evaluate.progressive_val_score(rows, model, metric)
    return model, metric, len(rows)


def assert_exact(pipeline, worker, spec_text, dataset, metric_rel=0.0):
    """The models equal River's exactly; the metrics too, or within ``metric_rel`` (MacroF1 sums
    per-class scores in the order of a set of labels: string hashing differs per process)."""
    specs = parse_specs(spec_text)
    for spec in specs:
        model, metric, n = reference(spec, dataset)
        entry = wait_for(
            lambda s=spec, n=n: (e := worker.model(s.name)) and e["n_learned"] == n and e,
            what=f"{spec.name} to learn {n} events",
        )
        assert entry["n_predicted"] == n
        expected = {type(m).__name__: m.get() for m in metric}
        assert entry["metrics"] == pytest.approx(expected, rel=metric_rel, abs=0)
        checkpoint = wait_for(
            lambda s=spec, n=n: (c := pipeline.last_checkpoint(0))
            and c["models"][s.name]["n_learned"] == n
            and c,
            what="a checkpoint covering every event",
        )
        saved = checkpoint["models"][spec.name]
        assert saved["n_learned"] == n
        diff = first_difference(canonical(saved["model"]), canonical(model))
        assert diff is None, f"{spec.name} differs from River offline at {diff}"
        assert [m.get() for m in saved["metric"]] == pytest.approx(
            [m.get() for m in metric], rel=metric_rel, abs=0
        )


def test_classifiers_linear_and_tree_equal_river(pipeline_factory):
    spec = "StandardScaler | LogisticRegression; HoeffdingTreeClassifier(grace_period=50)"
    pipeline = pipeline_factory(partitions=1, model=spec)
    worker = pipeline.start_worker()
    result = pipeline.replay("phishing")
    assert result.returncode == 0, result.stderr
    assert "1250 events of 'phishing' acknowledged" in result.stdout
    assert_exact(pipeline, worker, spec, datasets.Phishing())
    # the champion's prediction of each event, and the challenger's on the shadow topic
    predictions = pipeline.read(pipeline.predictions, 1250)
    shadow = pipeline.read(f"{pipeline.predictions}-shadow", 1250)
    assert len({p.key for p in predictions}) == len({p.key for p in shadow}) == 1250
    assert {orjson.loads(p.value)["model"] for p in predictions} == {
        "StandardScaler-LogisticRegression"
    }
    assert {orjson.loads(p.value)["model"] for p in shadow} == {"HoeffdingTreeClassifier"}


def test_regression_equals_river(pipeline_factory):
    spec = "StandardScaler | LinearRegression"
    pipeline = pipeline_factory(partitions=1, model=spec)
    worker = pipeline.start_worker()
    result = pipeline.replay("trump_approval")
    assert result.returncode == 0, result.stderr
    assert_exact(pipeline, worker, spec, datasets.TrumpApproval())


def test_multiclass_string_labels_equal_river(pipeline_factory):
    # 7 classes named by strings: scored with Accuracy, MacroF1 and CrossEntropy
    spec = "StandardScaler | HoeffdingTreeClassifier(grace_period=50); GaussianNB"
    pipeline = pipeline_factory(partitions=1, model=spec)
    worker = pipeline.start_worker()
    result = pipeline.replay("image_segments")
    assert result.returncode == 0, result.stderr
    assert "2310 events of 'image_segments' acknowledged" in result.stdout
    assert_exact(pipeline, worker, spec, datasets.ImageSegments(), metric_rel=1e-12)
    assert set(worker.model("GaussianNB")["metrics"]) == {"Accuracy", "MacroF1", "CrossEntropy"}
    assert worker.stats()["counters"].get("dead_letters", 0) == 0
