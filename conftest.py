"""Test-session defaults, loaded before any module of the app (doctests included)."""

import importlib.util
import os

# Unit tests and doctests import the app: keep its tables in memory and its state out of the tree.
os.environ.setdefault("STREAMLEARN_STORE", "memory://")
os.environ.setdefault("STREAMLEARN_DATADIR", "/tmp/streamlearn-unit-tests")
os.environ.setdefault("STREAMLEARN_CHECKPOINT_SECRET", "unit-test-secret")

# `export --mlflow`'s two modules import MLflow: without the `mlflow` extra, doctests skip them
if importlib.util.find_spec("mlflow") is None:
    collect_ignore = ["app/commands/mlflow_export.py", "app/models/mlflow_pyfunc.py"]
