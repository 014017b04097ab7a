"""``export --mlflow`` against MLflow's own sqlite registry, no Kafka: a kept version registered,
loaded back by its alias, predicts as the River model it holds (labels, probabilities, a row
with a missing value); versions, aliases, tags; a wrong secret, a missing MLflow."""

import pickle
import random
import sys

import click
import pytest

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")

import app.commands  # noqa: E402
from app.commands import mlflow_export, models  # noqa: E402
from app.models.signing import CheckpointError  # noqa: E402
from app.models.spec import parse_spec  # noqa: E402
from app.models.version_file import encode  # noqa: E402

SECRET = "unit-test-secret"
LR = parse_spec("StandardScaler | LogisticRegression")


def points(n: int, seed: int) -> list[tuple[dict, bool]]:
    rng = random.Random(seed)
    xs = [{"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1), "c": rng.random()} for _ in range(n)]
    return [(x, 0.7 * x["a"] - 0.4 * x["b"] > 0.05) for x in xs]


def kept(model, version: int, role: str, name: str = "lr") -> bytes:
    """A kept version's bytes, as the versions table holds them."""
    meta = {
        "name": name,
        "shard": 0,
        "version": version,
        "spec": LR.text,
        "role": role,
        "n_learned": 7,
        "metrics": {"Accuracy": 0.75},
        "reason": "every 7 labels",
    }
    state = {"model": model, "metric": None, "meta": meta}
    return encode(meta, pickle.dumps(state, pickle.HIGHEST_PROTOCOL), SECRET)


def test_a_version_registered_and_loaded_by_its_alias_predicts_as_river(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    model = LR.build()
    for x, y in points(300, 1):
        model.learn_one(x, y)
    said = mlflow_export.register(kept(model, 3, "champion"), SECRET, "app-1", uri)
    assert said == (
        "registered in MLflow as lr version 1 with alias champion (models:/lr@champion), "
        f"tracking URI {uri}"
    )
    frame = pd.DataFrame([x for x, _ in points(40, 2)])
    frame.loc[5, "c"] = float("nan")  # a missing value: the feature is left out, as in River
    rows = frame.to_dict("records")
    rows[5].pop("c")
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model("models:/lr@champion")
    assert loaded.predict(frame) == [model.predict_one(x) for x in rows]
    assert loaded.predict(frame, params={"proba": True}) == [
        model.predict_proba_one(x) for x in rows
    ]
    assert sorted(set(loaded.predict(frame))) == [False, True]  # (both labels are predicted)

    # a second version takes the alias; a challenger gets its own
    for x, y in points(300, 3):
        model.learn_one(x, y)
    mlflow_export.register(kept(model, 4, "champion"), SECRET, "app-1", uri)
    said = mlflow_export.register(kept(LR.build(), 1, "challenger", "fresh"), SECRET, "a", uri)
    assert "fresh version 1 with alias challenger (models:/fresh@challenger)" in said
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_registered_model("lr").aliases == {"champion": 2}
    assert client.get_registered_model("fresh").aliases == {"challenger": 1}
    assert mlflow.pyfunc.load_model("models:/lr/2").predict(frame) == [
        model.predict_one(x) for x in rows
    ]
    tags = client.get_model_version("lr", "2").tags
    assert {k: tags[k] for k in ("streamlearn.version", "streamlearn.role")} == {
        "streamlearn.version": "4",
        "streamlearn.role": "champion",
    }
    # the artifacts are beside the database, in the experiment "streamlearn"
    experiment = client.get_experiment_by_name("streamlearn")
    assert experiment.artifact_location == (tmp_path / "mlruns" / "streamlearn").as_uri()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "mlruns"]


def test_a_version_signed_with_another_secret_is_refused_before_mlflow_is_touched(tmp_path):
    value = kept(LR.build(), 1, "champion")
    with pytest.raises(CheckpointError):
        mlflow_export.register(value, "another secret", "a", f"sqlite:///{tmp_path}/m.db")
    assert list(tmp_path.iterdir()) == []


def test_without_mlflow_installed_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # (import mlflow now fails)
    monkeypatch.delitem(sys.modules, "app.commands.mlflow_export")
    monkeypatch.delattr(app.commands, "mlflow_export")
    with pytest.raises(click.ClickException) as raised:
        models.mlflow_export()
    assert raised.value.format_message() == (
        "--mlflow needs MLflow's client (import of mlflow halted; None in sys.modules): "
        "pip install 'streamlearn[mlflow]' (mlflow-skinny, SQLAlchemy, alembic, pandas)"
    )
