"""Turn a model spec such as ``StandardScaler | LogisticRegression(l2=0.1)`` into River objects.

A spec is River estimator class names joined by ``|``; each may take keyword arguments whose values
are Python literals. Names are resolved against River's estimator modules, never with ``eval``.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property
from typing import Any

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
    """A parsed spec: the text it came from and its stages as ``(class, kwargs)`` pairs, and
    the model's name and role in the config (``[[model]]``)."""

    text: str
    stages: tuple[tuple[type, dict], ...]
    #: River metric classes named after ``@`` in the spec; empty: the task's defaults
    metric_types: tuple[type, ...] = ()
    #: the name a ``[[model]]`` table gives ("": derived from the stages)
    given_name: str = ""
    #: :data:`CHAMPION` (its predictions go to the predictions topic) or :data:`CHALLENGER`
    role: str = "challenger"

    @property
    def name(self) -> str:
        """The given name, else a short, URL-safe one derived from the stages, e.g.
        ``StandardScaler-LogisticRegression``.

        >>> parse_spec("StandardScaler | LogisticRegression").name
        'StandardScaler-LogisticRegression'
        """
        return self.given_name or "-".join(cls.__name__ for cls, _ in self.stages)

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
    return parse_call(text, _river_names(), "River estimator")


def parse_call(text: str, names: dict[str, type], noun: str) -> tuple[type, dict]:
    """A class of ``names`` and its keyword arguments, from ``Name`` or ``Name(k=literal, ...)``
    (a ``noun`` such as "River estimator" says what an unknown name should have been); the
    class is built once with them, so that a bad argument is found here."""
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
    cls = names.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelSpecError(f"unknown {noun} {name!r}{hint}")
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


CHAMPION = "champion"
CHALLENGER = "challenger"
#: what a ``[[model]]`` table may hold
MODEL_FIELDS = ("name", "spec", "role")
#: a model's name: it is a key of checkpoints and part of web addresses
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_specs(text: str) -> list[ModelSpec]:
    """Parse one or more specs separated by ``;`` (``STREAMLEARN_MODEL``): the first is the
    champion, the others are challengers on the same stream.

    >>> [(s.name, s.role) for s in parse_specs("LogisticRegression; GaussianNB")]
    [('LogisticRegression', 'champion'), ('GaussianNB', 'challenger')]
    """
    specs = [parse_spec(part) for part in text.split(";") if part.strip()]
    if not specs:
        raise ModelSpecError("STREAMLEARN_MODEL is empty: name at least one River model")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ModelSpecError(f"two model specs share a name in {text!r}: {names}")
    if len({s.is_classifier for s in specs}) > 1:
        raise ModelSpecError("all models of one stream must be classifiers, or all regressors")
    return [replace(s, role=CHAMPION if i == 0 else CHALLENGER) for i, s in enumerate(specs)]


def parse_model_tables(tables: Any) -> list[ModelSpec]:
    """The models of the config file's ``[[model]]`` tables (``name``, ``spec``, ``role``):
    exactly one champion, names unique, every spec one of the champion's task. An error names
    the entry (``[[model]] #2``, from 1) and the field.

    >>> [(s.name, s.role, s.text) for s in parse_model_tables([
    ...     {"name": "lr", "spec": "LogisticRegression", "role": "champion"},
    ...     {"name": "nb", "spec": "GaussianNB", "role": "challenger"}])]
    [('lr', 'champion', 'LogisticRegression'), ('nb', 'challenger', 'GaussianNB')]
    >>> parse_model_tables([{"name": "lr", "spec": "LogisticRegression", "role": "challenger"}])
    Traceback (most recent call last):
    app.models.spec.ModelSpecError: [[model]]: no model has role = "champion" ...
    """
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ModelSpecError("[[model]] must be one or more tables, each with name, spec, role")
    specs = []
    for number, table in enumerate(tables, 1):
        where = f"[[model]] #{number}"
        unknown = sorted(set(table) - set(MODEL_FIELDS))
        if unknown:
            raise ModelSpecError(
                f"{where}: unknown field {unknown[0]!r} (a model has {', '.join(MODEL_FIELDS)})"
            )
        for key in MODEL_FIELDS:
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise ModelSpecError(f"{where}: {key} must be a non-empty string")
        name, role = table["name"], table["role"]
        if not _NAME.fullmatch(name):
            raise ModelSpecError(
                f"{where}: name = {name!r}: letters, digits, '_', '-' and '.', at most 64, "
                "starting with a letter or digit"
            )
        if role not in (CHAMPION, CHALLENGER):
            raise ModelSpecError(f'{where}: role = {role!r}: "champion" or "challenger"')
        if any(s.name == name for s in specs):
            raise ModelSpecError(f"{where}: name = {name!r}: another model has this name")
        try:
            spec = parse_spec(table["spec"])
        except ModelSpecError as exc:
            raise ModelSpecError(f"{where}: spec = {table['spec']!r}: {exc}") from None
        specs.append(replace(spec, given_name=name, role=role))
    champions = [s for s in specs if s.role == CHAMPION]
    if len(champions) != 1:
        found = "no model has" if not champions else f"{len(champions)} models have"
        raise ModelSpecError(f'[[model]]: {found} role = "champion"; exactly one must')
    champion = champions[0]
    for number, spec in enumerate(specs, 1):
        if spec.is_classifier != champion.is_classifier:
            task = "a classifier" if spec.is_classifier else "a regressor"
            other = "a classifier" if champion.is_classifier else "a regressor"
            raise ModelSpecError(
                f"[[model]] #{number}: spec = {spec.text!r} is {task}, the champion "
                f"{champion.name!r} is {other}: every model learns the same labels"
            )
    return specs


def champion_of(specs: Sequence[ModelSpec]) -> ModelSpec:
    """The spec whose role is champion (the first, if none says so)."""
    return next((s for s in specs if s.role == CHAMPION), specs[0])
