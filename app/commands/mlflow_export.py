"""``faust -A app models export NAME --mlflow``: a kept version of a model registered in an
MLflow model registry as a pyfunc model, under the alias of its role.

Reads: the version's bytes (chosen and read from Kafka by ``app/commands/models.py``), checked
with STREAMLEARN_CHECKPOINT_SECRET before anything is unpickled; the registry from
MLFLOW_TRACKING_URI (MLflow's own setting, read through MLflow), ``sqlite:///mlflow.db`` (in the
current directory) when it is unset, and the experiment from MLFLOW_EXPERIMENT_NAME, else
``streamlearn``. Writes, in that registry: one run holding the model (the River estimator
pickled, ``app/models/mlflow_pyfunc.py`` as its code, its requirements), the version's
parameters and metrics; a new version of the registered model NAME, tagged with what the kept
version is; and the alias ``champion`` or ``challenger`` (the model's role on that shard at that
version) moved to it. A new experiment of a ``sqlite:///`` registry keeps its artifacts beside
the database file (``mlruns/<experiment>``), not in the current directory. Keeps nothing.

Only this path imports MLflow (``app/commands/models.py`` imports this module when ``--mlflow``
is given): the worker never does (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import pickle
import re
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.environment_variables import MLFLOW_EXPERIMENT_NAME, MLFLOW_TRACKING_URI
from mlflow.models import ModelSignature
from mlflow.types.schema import ParamSchema, ParamSpec

from app.models import mlflow_pyfunc
from app.models.version_file import describe, load

#: the registry when MLFLOW_TRACKING_URI is unset (MLflow's own default since 3.7)
DEFAULT_URI = "sqlite:///mlflow.db"
#: the experiment of the runs when MLFLOW_EXPERIMENT_NAME is unset
EXPERIMENT = "streamlearn"
#: what ``predict`` takes besides the frame: ``{"proba": True}`` for probabilities
SIGNATURE = ModelSignature(inputs=None, params=ParamSchema([ParamSpec("proba", "boolean", False)]))


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else :data:`DEFAULT_URI`."""
    return MLFLOW_TRACKING_URI.get() or DEFAULT_URI


def scrub(text: str) -> str:
    """``text`` with the user and password of every URI in it, and any ``password=`` or
    ``token=`` in a query, replaced by ``***``: fit to print or log.

    >>> scrub("postgresql://ml:s3cr@t@db.example:5432/mlflow?sslmode=require")
    'postgresql://***@db.example:5432/mlflow?sslmode=require'
    >>> scrub("mysql://db.example/mlflow?user=ml&password=s3cret")
    'mysql://db.example/mlflow?user=ml&password=***'
    >>> scrub("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    """
    text = re.sub(r"(?<=://)[^/\s]*@", "***@", text)
    return re.sub(r"(?i)\b(password|passwd|pwd|token)=[^&\s]*", r"\1=***", text)


def artifacts_beside(uri: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: for a ``sqlite:///`` registry, a folder
    beside its database file; else ``None`` (the tracking server's default).

    >>> artifacts_beside("sqlite:////srv/ml/mlflow.db", "streamlearn")
    'file:///srv/ml/mlruns/streamlearn'
    >>> artifacts_beside("sqlite:////srv/ml/mlflow.db?mode=rw", "fraud / models")
    'file:///srv/ml/mlruns/fraud_models'
    >>> artifacts_beside("https://mlflow.example", "streamlearn") is None
    True
    """
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:///:memory:"):
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("_") or EXPERIMENT
    return (database.parent / "mlruns" / folder).as_uri()


def requirements() -> list[str]:
    """What loading the model needs, at the versions installed here."""
    needed = []
    for names in (("mlflow", "mlflow-skinny"), ("river",), ("pandas",)):
        for name in names:
            try:
                needed.append(f"{name}=={metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return needed


def register(value: bytes, secret: str, app_id: str, uri: str | None = None) -> str:
    """Register the kept version ``value`` (its bytes in the versions table) in the registry at
    ``uri`` (default: :func:`tracking_uri`) under its model's name, and move the alias of its
    role to it; what was registered, in one line, with no password in the URI."""
    uri = uri or tracking_uri()
    meta = describe(value)
    estimator = load(value, secret)["model"]  # (a CheckpointError if the secret is wrong)
    name, role = meta["name"], meta["role"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_name = MLFLOW_EXPERIMENT_NAME.get() or EXPERIMENT
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            experiment_name, artifact_location=artifacts_beside(uri, experiment_name)
        )
    )
    described = {
        "streamlearn.app": app_id,
        "streamlearn.shard": str(meta["shard"]),
        "streamlearn.version": str(meta["version"]),
        "streamlearn.role": role,
        "streamlearn.spec": meta["spec"],
        "streamlearn.n_learned": str(meta["n_learned"]),
        "streamlearn.reason": meta["reason"],
    }
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # (MLflow asks for an input example and a typed input: the features are whatever the
        # events hold, so the model takes any frame)
        warnings.filterwarnings("ignore", message=".*input_example.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*Add type hints.*", category=UserWarning)
        pickled = Path(folder) / "model.pkl"
        pickled.write_bytes(pickle.dumps(estimator, pickle.HIGHEST_PROTOCOL))
        run_name = f"{name} v{meta['version']} shard {meta['shard']}"
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=described):
            mlflow.log_params({k.removeprefix("streamlearn."): v for k, v in described.items()})
            mlflow.log_metrics({k: float(v) for k, v in meta["metrics"].items()})
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=mlflow_pyfunc.__file__,
                artifacts={mlflow_pyfunc.ARTIFACT: str(pickled)},
                signature=SIGNATURE,
                pip_requirements=requirements(),
            )
    registered = mlflow.register_model(logged.model_uri, name, tags=described)
    client.set_registered_model_alias(name, role, registered.version)
    return (
        f"registered in MLflow as {name} version {registered.version} with alias {role} "
        f"(models:/{name}@{role}), tracking URI {scrub(uri)}"
    )
