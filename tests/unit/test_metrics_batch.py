"""Batched metric updates (app/models/metric_batch.py, LiveModel) equal River's per-event ones, to
the bit.

"Equal" is the pickled bytes of the metric objects: every float's bits, every dict's keys in
their order, the very types of keys and values (a float where River has an int is a
difference), as a checkpoint stores them; and ``get()`` of each metric.
"""

from __future__ import annotations

import math
import pickle
import random
from collections import deque

import numpy as np
import pytest
import river
from river import datasets, evaluate, metrics

from app.models import metric_batch
from app.models.metric_batch import add_cells, likeliest, plan
from app.models.shard import PENDING_MAX, LiveModel, label_of, to_pairs
from app.models.spec import parse_spec

BINARY = "LogisticRegression"
MULTICLASS = "GaussianNB"
REGRESSION = "LinearRegression"
ACCURACY_ONLY = "LogisticRegression @ Accuracy"
#: the binary defaults are updated in one pass; other sets of them metric by metric
BINARY_SETS = [
    BINARY,
    "LogisticRegression @ Accuracy, ROCAUC",
    "LogisticRegression @ ROCAUC, LogLoss",
    "LogisticRegression @ LogLoss, Accuracy",
]


class NoModel:
    """Learns nothing: the scores fed to a LiveModel are the test's own."""

    def learn_one(self, x, y):
        pass

    predict_one = predict_proba_one = learn_one


def river_scores(metric, stream) -> None:
    """River's own updates: what ``evaluate.progressive_val_score`` does with each prediction."""
    for y, y_pred in stream:
        if y_pred is not None and y_pred != {}:
            metric.update(y_true=y, y_pred=y_pred)


def live_of(spec_text: str) -> LiveModel:
    spec = parse_spec(spec_text)
    return LiveModel(spec, NoModel(), spec.new_metrics())


def feed(live: LiveModel, stream) -> None:
    for y, y_pred in stream:
        live.score_and_learn({}, y, y_pred)


def assert_same(ours, theirs) -> None:
    """The same pickled state, the same ``get()`` of each metric, and the same state again
    (ROCAUC's ``get`` adds keys to its matrices' dicts, River's as ours)."""
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    for mine, river_metric in zip(ours, theirs, strict=True):
        assert pickle.dumps(mine) == pickle.dumps(river_metric), type(mine).__name__
    got, want = [m.get() for m in ours], [m.get() for m in theirs]
    assert [pickle.dumps(v) for v in got] == [pickle.dumps(v) for v in want], (got, want)
    for mine, river_metric in zip(ours, theirs, strict=True):
        assert pickle.dumps(mine) == pickle.dumps(river_metric), type(mine).__name__


# what River's binary classifiers can hand the metrics, edge cases included
EDGES = [
    {False: 0.5, True: 0.5},  # a tie: the likeliest label is the first key, False
    {True: 0.5, False: 0.5},  # a tie, True first
    {False: 1.0, True: 0.0},  # exactly 0 and 1 (LogLoss clamps them)
    {False: 0.0, True: 1.0},
    {False: 1.0},  # a model that has seen a single class
    {True: 1.0},
    {},  # no probabilities: not scored, as in River
    None,
    {False: 1 - 1e-16, True: 1e-16},  # below LogLoss's clamp
    {False: 1 / 9, True: 8 / 9},  # on the ROCAUC thresholds exactly
    {False: 8 / 9, True: 1 / 9},
    {False: 0.5 - 1 / 18, True: 4 / 9},
    {False: 1.0000001, True: -1e-07},  # on the first (shifted) threshold
]


def binary_stream(n: int, seed: int, edge_share: float = 0.3) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < edge_share:
            y_pred = rng.choice(EDGES)
        else:
            p = rng.random()
            y_pred = {False: 1 - p, True: p}
        y = rng.random() < 0.4
        out.append((y, y_pred))
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("spec_text", BINARY_SETS)
def test_binary_defaults_equal_river_at_every_read(spec_text: str, seed: int) -> None:
    stream = binary_stream(5000, seed)
    live, reference = live_of(spec_text), parse_spec(spec_text).new_metrics()
    assert live.uses_proba
    rng = random.Random(seed)
    at = 0
    while at < len(stream):  # read at irregular points, past PENDING_MAX too
        chunk = stream[at : at + rng.choice([1, 2, 7, 100, 999, PENDING_MAX + 3])]
        feed(live, chunk)
        river_scores(reference, chunk)
        assert_same(live.metric, reference)
        at += len(chunk)
    assert live.n_scored == sum(1 for _, p in stream if p)


@pytest.mark.parametrize("spec_text", [f"StandardScaler | {BINARY}", ACCURACY_ONLY])
def test_a_real_model_equals_progressive_val_score(spec_text: str) -> None:
    # Phishing's 1,250 rows: one batch applied at PENDING_MAX, the rest when read
    rows = [(x, y) for x, y in datasets.Phishing()]
    assert len(rows) > PENDING_MAX
    spec = parse_spec(spec_text)
    live = LiveModel.fresh(spec)
    for x, y in rows:
        live.score_and_learn(x, y, live.predict(x))
    model, reference = spec.build(), spec.new_metrics()
    evaluate.progressive_val_score(rows, model, reference)
    assert_same(live.metric, reference)


def test_every_metric_read_applies_what_is_pending() -> None:
    stream = binary_stream(300, 7)
    reference = parse_spec(BINARY).new_metrics()
    river_scores(reference, stream)
    want = {type(m).__name__: m.get() for m in reference}

    for read in (
        lambda live: live.metric_values(),
        lambda live: {type(m).__name__: m.get() for m in live.metric},
        lambda live: {type(m).__name__: m.get() for m in pickle.loads(pickle.dumps(live.metric))},
    ):
        live = live_of(BINARY)
        feed(live, stream)
        assert live._pending  # (batched: nothing applied yet)
        assert read(live) == want


def test_a_batch_is_applied_every_pending_max_events() -> None:
    live = live_of(BINARY)
    feed(live, binary_stream(PENDING_MAX + 10, 3, edge_share=0.0))
    assert len(live._pending) == 10


def test_single_class_all_positive_and_all_negative() -> None:
    for y in (True, False):
        stream = [(y, p) for _, p in binary_stream(2000, 4)]
        live, reference = live_of(BINARY), parse_spec(BINARY).new_metrics()
        feed(live, stream)
        river_scores(reference, stream)
        assert_same(live.metric, reference)


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("spec_text", [BINARY, BINARY_SETS[1]])
def test_integer_labels_and_numpy_probabilities(spec_text: str, mixed: bool) -> None:
    rng = random.Random(5)
    stream = []
    for _ in range(2000):
        p = np.float64(rng.choice([rng.random(), 0.0, 1.0, 0.5, 1 / 9]))
        if mixed and rng.random() < 0.5:
            p = float(p)  # numpy's floats and Python's in one stream
        stream.append((rng.choice([0, 1]), {0: 1.0 - p, 1: p}))
    live, reference = live_of(spec_text), parse_spec(spec_text).new_metrics()
    feed(live, stream)
    river_scores(reference, stream)
    assert_same(live.metric, reference)
    # (River's keys of ROCAUC's matrices are numpy's bools where a numpy float made them:
    # so are ours)
    key = type(next(iter(reference[1].cms[1].sum_col)))
    assert key is np.bool_ if not mixed else key in (bool, np.bool_)


def test_nan_probabilities_are_scored_as_river_scores_them() -> None:
    stream = binary_stream(500, 6)
    stream[100] = (True, {False: math.nan, True: math.nan})
    stream[300] = (False, {False: 0.5, True: math.nan})
    live, reference = live_of(BINARY), parse_spec(BINARY).new_metrics()
    feed(live, stream)
    river_scores(reference, stream)
    assert_same(live.metric, reference)


def test_a_checkpoint_taken_mid_batch_restores_and_goes_on_identically() -> None:
    stream = binary_stream(3000, 8)
    reference = parse_spec(BINARY).new_metrics()
    first = live_of(BINARY)
    feed(first, stream[:1700])
    assert first._pending
    saved = pickle.dumps(first.metric)  # what ShardModels.snapshot stores: ``live.metric``
    river_scores(reference, stream[:1700])
    assert pickle.dumps(reference) == saved
    feed(first, stream[1700:1750])  # the live one goes on while the checkpoint is written

    restored = live_of(BINARY)
    restored.metric = pickle.loads(saved)  # as ShardModels.restore does
    feed(restored, stream[1700:])
    river_scores(reference, stream[1700:])
    assert_same(restored.metric, reference)


def test_replacing_the_metrics_gives_the_old_ones_what_they_were_due() -> None:
    stream = binary_stream(200, 9)
    live = live_of(BINARY)
    old = live._metric
    feed(live, stream)
    live.metric = parse_spec(BINARY).new_metrics()
    reference = parse_spec(BINARY).new_metrics()
    river_scores(reference, stream)
    assert_same(old, reference)
    assert live.metric_values() == {"Accuracy": 0.0, "ROCAUC": 0.0, "LogLoss": 0.0}


def test_labels_only_accuracy_equals_river() -> None:
    rng = random.Random(10)
    stream = [(rng.random() < 0.5, rng.random() < 0.5) for _ in range(3000)]
    live, reference = live_of(ACCURACY_ONLY), parse_spec(ACCURACY_ONLY).new_metrics()
    assert not live.uses_proba
    feed(live, stream)
    river_scores(reference, stream)
    assert_same(live.metric, reference)


def test_multiclass_defaults_equal_river() -> None:
    rng = random.Random(11)
    classes = ["cat", "dog", "ant", "bee"]
    stream = []
    for i in range(3000):
        seen = classes[: 1 + min(3, i // 50)]  # classes appear over time
        weights = [rng.choice([0.0, 0.25, 0.5, rng.random()]) for _ in seen]
        total = sum(weights) or 1.0
        y_pred = {c: w / total for c, w in zip(seen, weights, strict=True)}
        # labels as JSON decodes them: equal strings, distinct objects
        stream.append(("".join(list(rng.choice(classes))), y_pred if i % 97 else {}))
    live, reference = live_of(MULTICLASS), parse_spec(MULTICLASS).new_metrics()
    assert [type(m).__name__ for m in reference] == ["Accuracy", "MacroF1", "CrossEntropy"]
    for at in range(0, len(stream), 700):
        feed(live, stream[at : at + 700])
        river_scores(reference, stream[at : at + 700])
        assert_same(live.metric, reference)


def test_regression_defaults_equal_river_and_are_not_batched() -> None:
    rng = random.Random(12)
    stream = [(rng.gauss(0, 1), rng.gauss(0, 1)) for _ in range(2000)]
    live, reference = live_of(REGRESSION), parse_spec(REGRESSION).new_metrics()
    assert live._batched == []
    feed(live, stream)
    river_scores(reference, stream)
    assert_same(live.metric, reference)


def test_which_metrics_are_batched() -> None:
    per_event, batched = plan(parse_spec(BINARY).new_metrics())
    assert (len(per_event), len(batched)) == (0, 1)  # the three in one pass
    per_event, batched = plan(parse_spec(BINARY_SETS[1]).new_metrics())
    assert (len(per_event), len(batched)) == (0, 2)
    per_event, batched = plan(parse_spec(MULTICLASS).new_metrics())
    assert (len(per_event), len(batched)) == (2, 1)  # MacroF1 and CrossEntropy per event
    # a confusion matrix two metrics share: River updates it twice per event, so per event
    cm = metrics.ConfusionMatrix()
    shared = metrics.Accuracy(cm=cm) + metrics.Precision(cm=cm) + metrics.LogLoss()
    per_event, batched = plan(shared)
    assert (len(per_event), len(batched)) == (2, 1)
    stream = [(y, p) for y, p in binary_stream(500, 13) if p]
    live = LiveModel(parse_spec(BINARY), NoModel(), shared)
    cm2 = metrics.ConfusionMatrix()
    reference = metrics.Accuracy(cm=cm2) + metrics.Precision(cm=cm2) + metrics.LogLoss()
    feed(live, stream)
    river_scores(reference, stream)
    assert_same(live.metric, reference)


def test_another_river_version_is_updated_per_event(monkeypatch) -> None:
    monkeypatch.setattr(river, "__version__", "0.27.0")
    per_event, batched = plan(parse_spec(BINARY).new_metrics())
    assert (len(per_event), len(batched)) == (3, 0)
    stream = binary_stream(300, 17)
    live, reference = live_of(BINARY), parse_spec(BINARY).new_metrics()
    feed(live, stream)
    assert not live._pending
    river_scores(reference, stream)
    assert_same(live.metric, reference)


# what the batches rely on of River: each test fails if River changes it


def test_river_is_the_version_checked() -> None:
    assert river.__version__ == metric_batch.CHECKED_RIVER


def test_add_cells_is_what_confusion_matrix_update_does() -> None:
    # the attributes a ConfusionMatrix has (add_cells writes all but _init_classes)
    assert set(vars(metrics.ConfusionMatrix())) == {
        "_init_classes",
        "sum_row",
        "sum_col",
        "data",
        "n_samples",
        "total_weight",
        "_total_true_positives",
    }
    rng = random.Random(14)
    labels = [True, False, 1, 0, "a", "b", 2.0]
    for _ in range(20):
        pairs = [(rng.choice(labels), rng.choice(labels)) for _ in range(rng.randint(0, 60))]
        ours, theirs = metrics.ConfusionMatrix(), metrics.ConfusionMatrix()
        for start in range(0, len(pairs), 17):  # several batches into the same matrix
            cells: dict = {}
            for pair in pairs[start : start + 17]:
                cells[pair] = cells.get(pair, 0) + 1
            add_cells(ours, cells)
        for y_true, y_pred in pairs:
            theirs.update(y_true, y_pred)
        assert pickle.dumps(ours) == pickle.dumps(theirs)
        assert ours.total_true_positives == theirs.total_true_positives


@pytest.mark.parametrize("spec_text", [BINARY, MULTICLASS, ACCURACY_ONLY])
def test_rolling_values_are_rivers_over_the_last_scored(spec_text: str) -> None:
    rng = random.Random(16)
    if spec_text == MULTICLASS:
        stream = [
            (rng.choice("abc"), {"a": 0.5, "b": rng.random(), "c": 0.25}) for _ in range(2500)
        ]
    elif spec_text == ACCURACY_ONLY:
        stream = [(rng.random() < 0.5, rng.random() < 0.5) for _ in range(2500)]
    else:
        stream = binary_stream(2500, 16)
    live = live_of(spec_text)
    feed(live, stream)
    scored = [(y, p) for y, p in stream if p is not None and p != {}]
    reference = parse_spec(spec_text).new_metrics()
    river_scores(reference, scored[-live.recent.maxlen :])
    assert live.rolling_values() == {type(m).__name__: m.get() for m in reference}


def test_labels_and_pairs_of_predictions_are_rivers_and_the_loops() -> None:
    rng = random.Random(18)
    preds = [*EDGES, {"a": 0.3, "b": 0.3, "c": 0.4}, {"a": math.nan, "b": 0.5}, True, 2.5]
    preds += [{False: rng.random(), True: rng.random()} for _ in range(200)]
    for p in preds:
        if isinstance(p, dict) and p:
            assert label_of(p) == max(p, key=p.get) == likeliest(p)
            assert type(label_of(p)) is type(max(p, key=p.get))
        pairs = [[k, v] for k, v in p.items()] if isinstance(p, dict) else p
        assert pickle.dumps(to_pairs(p)) == pickle.dumps(pairs)
    assert label_of({}) is None and label_of(None) is None and label_of(2.5) == 2.5


def test_recent_holds_what_was_scored() -> None:
    live = live_of(BINARY)
    stream = binary_stream(50, 15)
    feed(live, stream)
    assert list(live.recent) == [(y, p) for y, p in stream if p]
    assert isinstance(live.recent, deque)
