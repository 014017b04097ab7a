"""A prediction never changes a model: every supported estimator family, trained, is the same
bytes before and after it predicts (what the engine does for an event without a label, and
what a score on request will do)."""

import pickle
from itertools import islice

import pytest
from river import datasets

from app.models.shard import LiveModel, ShardModels
from app.models.spec import parse_spec, parse_specs

#: one spec per family a worker can run: linear, trees, naive Bayes, neighbours, forests,
#: Mondrian forests, and pipelines with an unsupervised scaler before the model
CLASSIFIERS = [
    "StandardScaler | LogisticRegression",
    "Perceptron",
    "PAClassifier",
    "ALMAClassifier",
    "SoftmaxRegression",
    "HoeffdingTreeClassifier(grace_period=20)",
    "HoeffdingAdaptiveTreeClassifier(grace_period=20, seed=1)",
    "ExtremelyFastDecisionTreeClassifier(grace_period=20)",
    "GaussianNB",
    "KNNClassifier(n_neighbors=3)",
    "ARFClassifier(n_models=3, seed=1)",
    "AMFClassifier(n_estimators=3, seed=1)",
    "StandardScaler | HoeffdingTreeClassifier(grace_period=20)",
]
REGRESSORS = [
    "StandardScaler | LinearRegression",
    "HoeffdingTreeRegressor(grace_period=20)",
    "HoeffdingAdaptiveTreeRegressor(grace_period=20, seed=1)",
    "KNNRegressor(n_neighbors=3)",
    "ARFRegressor(n_models=3, seed=1)",
    "AMFRegressor(n_estimators=3, seed=1)",
]
ROWS = list(islice(datasets.Phishing(), 400))


def trained(text: str) -> tuple[LiveModel, bool]:
    spec = parse_spec(text)
    live = LiveModel.fresh(spec)
    for x, y in ROWS[:300]:
        y = y if spec.is_classifier else x["age_of_domain"] * 3.0 + x["empty_server_form_handler"]
        live.score_and_learn(x, y, live.predict(x))
    return live, spec.is_classifier


@pytest.mark.parametrize("text", CLASSIFIERS + REGRESSORS)
def test_predicting_leaves_every_byte_of_the_model_as_it_was(text):
    live, classifier = trained(text)
    for x, _ in ROWS[300:]:
        before = pickle.dumps(live.model)
        live.predict(x)  # what the engine calls
        live.model.predict_one(x)
        if classifier:
            live.model.predict_proba_one(x)
        assert pickle.dumps(live.model) == before, f"{text} changed when it predicted"


def test_an_event_without_a_label_changes_no_model_of_the_shard():
    shard = ShardModels.fresh(0, parse_specs("StandardScaler | LogisticRegression; GaussianNB"))
    for i, (x, y) in enumerate(ROWS[:200]):
        shard.take_event({"id": f"e{i}", "key": None, "ts": float(i), "x": x, "y": y}, 0.0)
    before = {name: pickle.dumps(live.model) for name, live in shard.models.items()}
    for i, (x, _) in enumerate(ROWS[200:], 200):
        _, park = shard.take_event({"id": f"e{i}", "key": None, "ts": float(i), "x": x}, 0.0)
        assert park is not None  # parked for its label, not learned
    assert {name: pickle.dumps(live.model) for name, live in shard.models.items()} == before
