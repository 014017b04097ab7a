"""A River estimator as an MLflow pyfunc model: the code MLflow keeps with each version that
``faust -A app models export NAME --mlflow`` registers (``app/commands/mlflow_export.py``).

MLflow logs this file as the model's code ("models from code") and runs it when the model is
loaded: it imports mlflow, pandas and river only, nothing of streamlearn, so
``mlflow.pyfunc.load_model("models:/NAME@champion")`` works wherever those are installed (the
versions are in the model's requirements.txt), with no settings, secret or Kafka. Reads: the
model's ``river_model`` artifact, the River estimator pickled (with :mod:`pickle`, as MLflow's
own flavors pickle theirs: whoever can write to the registry can write this code too). Writes
nothing. Keeps the estimator, which it never changes: ``predict`` only predicts.

``predict(frame)``: one prediction per row, River's ``predict_one`` of the row as a dict (column
name to value; a missing value, ``None`` or NaN, is left out, as an absent feature is in River),
as a list in the frame's order: a classifier's predicted label, a regressor's number.
``predict(frame, params={"proba": True})``: a classifier's ``predict_proba_one`` per row instead
(a dict of label to probability).
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

#: the artifact holding the pickled River estimator
ARTIFACT = "river_model"


def rows(model_input: Any) -> list[dict]:
    """The rows of ``model_input`` (a pandas DataFrame, a list of dicts, or one dict) as River's
    feature dicts, missing values left out.

    >>> import pandas as pd
    >>> rows(pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]}))
    [{'a': 1.5, 'b': 'x'}, {'b': 'y'}]
    >>> rows({"a": 2})
    [{'a': 2}]
    """
    if isinstance(model_input, dict):
        records = [model_input]
    elif isinstance(model_input, list):
        records = model_input
    else:  # a DataFrame: to_dict gives Python's own ints, floats and strings
        records = model_input.to_dict("records")
    return [
        {
            name: value
            for name, value in record.items()
            if value is not None and not (isinstance(value, float) and math.isnan(value))
        }
        for record in records
    ]


class RiverModel(PythonModel):
    """A River estimator behind MLflow's pyfunc ``predict``."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[ARTIFACT], "rb") as file:
            self.model = pickle.load(file)

    # (``model_input`` has no type hint: MLflow reads one as the schema of the input)
    def predict(self, context: Any, model_input, params: dict | None = None) -> list:
        """``predict_one`` of each row (``params={"proba": True}``: ``predict_proba_one``)."""
        if params and params.get("proba"):
            if not hasattr(self.model, "predict_proba_one"):
                raise ValueError(f"{type(self.model).__name__} gives no probabilities")
            return [self.model.predict_proba_one(x) for x in rows(model_input)]
        return [self.model.predict_one(x) for x in rows(model_input)]


# MLflow runs this file to load the model, and takes the model set here
mlflow.models.set_model(RiverModel())
