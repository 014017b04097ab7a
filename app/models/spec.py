"""Turn a model spec such as ``StandardScaler | LogisticRegression(l2=0.1)`` into River objects.

A spec is River estimator class names joined by ``|``; each may take keyword arguments whose values
are Python literals. Names are resolved against River's estimator modules, never with ``eval``.
"""

from __future__ import annotations

import ast
import difflib
import importlib
from dataclasses import dataclass
from functools import cache, cached_property

from river import base, compose, metrics

from app.compat import is_multiclass

#: River modules searched, in order, for the names a spec uses.
RIVER_MODULES = (
    "preprocessing",
    "linear_model",
    "tree",
    "naive_bayes",
    "neighbors",
    "forest",
    "ensemble",
    "feature_extraction",
    "feature_selection",
    "imblearn",
    "multiclass",
    "dummy",
    "compose",
    "anomaly",
    "cluster",
    "stats",
    "optim",
)


class ModelSpecError(ValueError):
    """The model spec names no River estimator, or gives it arguments it cannot take."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: the text it came from and its stages as ``(class, kwargs)`` pairs."""

    text: str
    stages: tuple[tuple[type, dict], ...]
    #: River metric classes named after ``@`` in the spec; empty: the task's defaults
    metric_types: tuple[type, ...] = ()

    @property
    def name(self) -> str:
        """A short, URL-safe name for the spec, e.g. ``StandardScaler-LogisticRegression``.

        >>> parse_spec("StandardScaler | LogisticRegression").name
        'StandardScaler-LogisticRegression'
        """
        return "-".join(cls.__name__ for cls, _ in self.stages)

    def build(self) -> base.Estimator:
        """A fresh, untrained model for this spec."""
        steps = [cls(**kwargs) for cls, kwargs in self.stages]
        return steps[0] if len(steps) == 1 else compose.Pipeline(*steps)

    @property
    def is_classifier(self) -> bool:
        """Whether the final stage is a classifier (else it is treated as a regressor)."""
        return issubclass(self.stages[-1][0], base.Classifier)

    @cached_property
    def multiclass(self) -> bool:
        """Whether the model is a classifier that learns more than two classes.

        >>> parse_spec("LogisticRegression").multiclass, parse_spec("GaussianNB").multiclass
        (False, True)
        """
        return self.is_classifier and is_multiclass(self.build())

    def new_metrics(self) -> metrics.base.Metrics:
        """The metrics for this model's task, updated prequentially.

        Binary classifiers get ROCAUC and LogLoss, which read the probability of ``True``;
        multiclass classifiers get MacroF1 and CrossEntropy instead, which are right for any
        labels (and equal to what the binary ones measure on two classes, for CrossEntropy).

        >>> [type(m).__name__ for m in parse_spec("LogisticRegression").new_metrics()]
        ['Accuracy', 'ROCAUC', 'LogLoss']
        >>> [type(m).__name__ for m in parse_spec("HoeffdingTreeClassifier").new_metrics()]
        ['Accuracy', 'MacroF1', 'CrossEntropy']
        >>> [type(m).__name__ for m in parse_spec("LinearRegression").new_metrics()]
        ['MAE', 'RMSE']
        >>> [type(m).__name__ for m in parse_spec("LogisticRegression @ Accuracy").new_metrics()]
        ['Accuracy']
        """
        if self.metric_types:
            return metrics.base.Metrics([cls() for cls in self.metric_types])
        if self.multiclass:
            return metrics.Accuracy() + metrics.MacroF1() + metrics.CrossEntropy()
        if self.is_classifier:
            return metrics.Accuracy() + metrics.ROCAUC() + metrics.LogLoss()
        return metrics.MAE() + metrics.RMSE()


@cache
def _river_names() -> dict[str, type]:
    names: dict[str, type] = {}
    for module_name in RIVER_MODULES:
        module = importlib.import_module(f"river.{module_name}")
        for attr in getattr(module, "__all__", dir(module)):
            obj = getattr(module, attr, None)
            if isinstance(obj, type) and issubclass(obj, base.Base):
                names.setdefault(attr, obj)
    return names


def _parse_stage(text: str) -> tuple[type, dict]:
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ModelSpecError(f"cannot parse model stage {text.strip()!r}: {exc.msg}") from None
    if isinstance(node, ast.Name):
        name, call = node.id, None
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, call = node.func.id, node
    else:
        raise ModelSpecError(
            f"model stage {text.strip()!r} must be a River class name, optionally called with "
            "keyword arguments, e.g. HoeffdingTreeClassifier(grace_period=50)"
        )
    cls = _river_names().get(name)
    if cls is None:
        close = difflib.get_close_matches(name, _river_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelSpecError(f"unknown River estimator {name!r}{hint}")
    kwargs: dict = {}
    if call is not None:
        if call.args:
            raise ModelSpecError(f"{name}: use keyword arguments only (name=value)")
        for kw in call.keywords:
            if kw.arg is None:
                raise ModelSpecError(f"{name}: **kwargs are not allowed in a model spec")
            try:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                raise ModelSpecError(
                    f"{name}({kw.arg}=...): only literal values (numbers, strings, "
                    "True/False/None, lists, dicts) are allowed"
                ) from None
    try:
        cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelSpecError(f"{name}{tuple(kwargs.items()) or ''}: {exc}") from None
    return cls, kwargs


def parse_spec(text: str) -> ModelSpec:
    """Parse and check a model spec; raise :class:`ModelSpecError` with the reason if it is bad.

    >>> parse_spec("HoeffdingTreeClassifier(grace_period=50)").build().grace_period
    50
    >>> parse_spec("StandardScaler | Nope")
    Traceback (most recent call last):
    app.models.spec.ModelSpecError: unknown River estimator 'Nope'...
    """
    model_text, _, metrics_text = text.partition("@")
    parts = [p for p in model_text.split("|")]
    if not model_text.strip() or any(not p.strip() for p in parts):
        raise ModelSpecError(f"empty stage in model spec {text!r}")
    spec = ModelSpec(
        text=text,
        stages=tuple(_parse_stage(p) for p in parts),
        metric_types=_parse_metrics(metrics_text, text),
    )
    if not issubclass(spec.stages[-1][0], (base.Classifier, base.Regressor)):
        raise ModelSpecError(
            f"the last stage of {text!r} must be a River classifier or regressor, "
            f"not {spec.stages[-1][0].__name__}"
        )
    return spec


def _parse_metrics(text: str, spec_text: str) -> tuple[type, ...]:
    """River metric classes named in ``text`` (``"Accuracy, LogLoss"``); empty text: none.

    >>> _parse_metrics(" Accuracy, LogLoss", "LogisticRegression @ Accuracy, LogLoss")
    (<class 'river.metrics.accuracy.Accuracy'>, <class 'river.metrics.log_loss.LogLoss'>)
    """
    out = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        cls = getattr(metrics, name, None)
        if not (isinstance(cls, type) and issubclass(cls, metrics.base.Metric)):
            raise ModelSpecError(f"unknown River metric {name!r} in model spec {spec_text!r}")
        out.append(cls)
    if "@" in spec_text and not out:
        raise ModelSpecError(f"no metric named after '@' in model spec {spec_text!r}")
    return tuple(out)


def parse_specs(text: str) -> list[ModelSpec]:
    """Parse one or more specs separated by ``;`` (champion and challengers on the same stream).

    >>> [s.name for s in parse_specs("LogisticRegression; GaussianNB")]
    ['LogisticRegression', 'GaussianNB']
    """
    specs = [parse_spec(part) for part in text.split(";") if part.strip()]
    if not specs:
        raise ModelSpecError("STREAMLEARN_MODEL is empty: name at least one River model")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ModelSpecError(f"two model specs share a name in {text!r}: {names}")
    if len({s.is_classifier for s in specs}) > 1:
        raise ModelSpecError("all models of one stream must be classifiers, or all regressors")
    return specs
