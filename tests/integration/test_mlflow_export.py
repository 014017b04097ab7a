"""``faust -A app models export NAME --mlflow`` against MLflow's own sqlite registry, after a
real worker learned a stream: the version registered under the alias of its role, loaded back
by ``mlflow.pyfunc.load_model("models:/NAME@champion")`` in a process that never imports
streamlearn, predicts exactly as River trained offline on the labels that version had learned;
a second export is version 2 and takes the alias; a challenger gets ``challenger``; with
MLFLOW_TRACKING_URI unset the registry is ``sqlite:///mlflow.db`` in the current directory; a
registry's password is in no output."""

import json
import subprocess
import sys

import orjson
import pytest

from app import load_model
from app.models.spec import parse_spec
from tests.integration.harness import SECRET, wait_for
from tests.integration.test_faults import hyperplane_events

pytestmark = pytest.mark.integration

pytest.importorskip("mlflow")

N = 1000
EVERY = 500
LR = parse_spec("StandardScaler | LogisticRegression")
NB = parse_spec("GaussianNB")
CONFIG = f"""
[[model]]
name = "lr"
spec = "{LR.text}"
role = "champion"
[[model]]
name = "nb"
spec = "{NB.text}"
role = "challenger"

[promotion]
metric = "Accuracy"
mode = "off"
"""

#: loads each model URI from its registry and predicts the frame; run in its own process, which
#: must not need streamlearn to do it
LOAD = """
import json, sys
import mlflow, pandas as pd
asked = json.load(open(sys.argv[1]))
frame = pd.DataFrame(asked["rows"])
out = {}
for uri, model in asked["models"]:
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(model)
    out[uri + " " + model] = loaded.predict(frame)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = model.removeprefix("models:/").split("/")[0].split("@")[0]
    out[uri + " " + name + " aliases"] = {
        k: int(v) for k, v in client.get_registered_model(name).aliases.items()
    }
out["streamlearn imported"] = sorted(m for m in sys.modules if m.split(".")[0] in
    ("app", "agents", "tables"))
json.dump(out, sys.stdout)
"""


def trained(spec, rows):
    """River offline: ``spec`` after predicting and learning ``rows`` in order, as a shard."""
    model = spec.build()
    for row in rows:
        x = orjson.loads(orjson.dumps(row["x"]))
        model.predict_one(x)
        model.learn_one(x, row["y"])
    return model


def test_export_to_mlflow_registers_versions_that_predict_as_river_offline(
    pipeline_factory, tmp_path
):
    config = tmp_path / "streamlearn.toml"
    config.write_text(CONFIG)
    pipeline = pipeline_factory(partitions=1, config=str(config), snapshot_every=EVERY)
    worker = pipeline.start_worker()
    rows = hyperplane_events(N + 100)
    pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows[:N]])
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0))
        and all(c["models"][m]["n_learned"] == N for m in ("lr", "nb")),
        what="a checkpoint covering every event (and versions 1 and 2 of both models)",
    )
    registry = tmp_path / "registry"
    registry.mkdir()
    uri = f"sqlite:///{registry}/mlflow.db"
    given = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": None}

    def export(*args, **options):
        done = pipeline.command("models", "export", *args, **options)
        assert done.returncode == 0, done.stderr
        return done.stdout

    said = export("lr", "--version", "1", "--mlflow", env=given)
    assert f"models export: lr version 1 of shard 0 ({EVERY} labels learned" in said
    assert said.rstrip().endswith(
        "registered in MLflow as lr version 1 with alias champion (models:/lr@champion), "
        f"tracking URI {uri}"
    )
    out = tmp_path / "lr.model"
    said = export("lr", "--mlflow", "--out", str(out), env=given)  # the newest: version 2
    assert said.splitlines()[0].endswith(f"written to {out}")
    assert said.splitlines()[1].endswith(
        f"registered in MLflow as lr version 2 with alias champion (models:/lr@champion), "
        f"tracking URI {uri}"
    )
    said = export("nb", "--mlflow", env=given)
    assert "registered in MLflow as nb version 1 with alias challenger (models:/nb@challenger)" in (
        said
    )
    # MLFLOW_TRACKING_URI unset: sqlite:///mlflow.db in the current directory
    here = tmp_path / "here"
    here.mkdir()
    unset = {"MLFLOW_TRACKING_URI": None, "MLFLOW_EXPERIMENT_NAME": None}
    said = export("lr", "--version", "1", "--mlflow", cwd=here, env=unset)
    assert said.rstrip().endswith(
        "lr version 1 with alias champion (models:/lr@champion), tracking URI sqlite:///mlflow.db"
    )
    assert (here / "mlflow.db").is_file() and (here / "mlruns" / "streamlearn").is_dir()
    # a registry's password is in no output, nor is a traceback
    secret_uri = "postgresql://ml:s3cret-pw@127.0.0.1:9/mlflow"
    refused = pipeline.command(
        "models", "export", "lr", "--mlflow", env={"MLFLOW_TRACKING_URI": secret_uri}
    )
    assert refused.returncode == 2
    assert "s3cret-pw" not in refused.stdout + refused.stderr
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("models export: MLflow registry postgresql://***@127.0.0.1:9/mlflow: ")
    )

    # loaded from the registries by another process, which imports none of streamlearn
    frame = [orjson.loads(orjson.dumps(row["x"])) for row in rows[N:]]
    default = f"sqlite:///{here}/mlflow.db"
    asked = tmp_path / "asked.json"
    models = [
        (uri, "models:/lr@champion"),
        (uri, "models:/lr/1"),
        (uri, "models:/nb@challenger"),
        (default, "models:/lr@champion"),
    ]
    asked.write_text(json.dumps({"rows": frame, "models": models}))
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, str(asked)], cwd=tmp_path, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    got = json.loads(loaded.stdout)
    assert got["streamlearn imported"] == []

    v1, v2, nb = trained(LR, rows[:EVERY]), trained(LR, rows[:N]), trained(NB, rows[:N])
    assert got[f"{uri} models:/lr@champion"] == [v2.predict_one(x) for x in frame]
    assert got[f"{uri} models:/lr/1"] == [v1.predict_one(x) for x in frame]
    assert got[f"{uri} models:/nb@challenger"] == [nb.predict_one(x) for x in frame]
    assert got[f"{default} models:/lr@champion"] == [v1.predict_one(x) for x in frame]
    assert got[f"{uri} lr aliases"] == {"champion": 2}
    assert got[f"{uri} nb aliases"] == {"challenger": 1}
    assert got[f"{default} lr aliases"] == {"champion": 1}
    # both labels are predicted, and the versions differ where it counts: a wrong one would show
    assert {v2.predict_one(x) for x in frame} == {nb.predict_one(x) for x in frame} == {0, 1}
    assert [v1.predict_one(x) for x in frame] != [v2.predict_one(x) for x in frame]
    # and the file written beside it is the same version
    exported = load_model(out, secret=SECRET)
    assert [exported.predict_one(x) for x in frame] == [v2.predict_one(x) for x in frame]
    worker.stop()
