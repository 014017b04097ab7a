"""Sources the ``replay`` command can stream: River's shipped datasets and synthetic generators.

Names are snake_case: ``phishing``, ``trump_approval``, ... (datasets River ships inside its
package; those it downloads are not offered) and ``sea``, ``hyperplane``, ``agrawal``, ... (River's
generators, seeded with ``--seed``). The project's own ``fraud`` stream lives in
``app/commands/fraud.py``.

Encoding rules, so that any row becomes an event of the JSON contract:
* feature names become strings (River's generators use ``int`` names);
* ``datetime``/``date`` values become epoch seconds (float), so a model can use them as numbers;
* features whose value is ``None`` are left out (River treats a missing feature as unknown);
* numpy scalars become Python numbers.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections.abc import Iterator
from typing import Any

from river import datasets
from river.datasets import base, synth


class UnknownDataset(ValueError):
    """The name matches no dataset or generator the replay can stream."""


def snake(name: str) -> str:
    """River's class name in snake case.

    >>> snake("TrumpApproval"), snake("SEA"), snake("RandomRBFDrift"), snake("LEDDrift")
    ('trump_approval', 'sea', 'random_rbf_drift', 'led_drift')
    >>> snake("Planes2D"), snake("SP500Stocks")
    ('planes_2d', 'sp500_stocks')
    """
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([0-9])([A-Z][a-z])", r"\1_\2", s)
    return re.sub(r"([a-z])([A-Z0-9])", r"\1_\2", s).lower()


def _task_of(cls: type) -> str:
    try:
        return cls().task
    except TypeError:
        return ""


def shipped_datasets() -> dict[str, type]:
    """River datasets shipped inside its package (no download), single-output, by snake name."""
    out = {}
    for name in datasets.__all__:
        cls = getattr(datasets, name)
        if (
            inspect.isclass(cls)
            and issubclass(cls, base.FileDataset)
            and not issubclass(cls, base.RemoteDataset)
            and "Multi-output" not in _task_of(cls)
        ):
            out[snake(name)] = cls
    return out


def generators() -> dict[str, type]:
    """River's synthetic generators, single-output, by snake name."""
    out = {}
    for name in synth.__all__:
        cls = getattr(synth, name)
        if "Multi-output" not in _task_of(cls):
            out[snake(name)] = cls
    return out


def task(name: str) -> str:
    """River's task of dataset or generator ``name`` ("Binary classification", ...)."""
    if name == "fraud":
        return "Binary classification"
    cls = shipped_datasets().get(name) or generators().get(name)
    return _task_of(cls) if cls is not None else ""


def available() -> list[str]:
    """Every name ``replay`` accepts, ``fraud`` included."""
    return sorted([*shipped_datasets(), *generators(), "fraud"])


def encode_value(value: Any) -> Any:
    """A feature value as JSON can carry it.

    >>> encode_value(dt.datetime(1970, 1, 2, tzinfo=dt.timezone.utc)), encode_value(True)
    (86400.0, True)
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if hasattr(value, "item") and not isinstance(value, bool | int | float | str):
        return value.item()
    return value


def encode_x(x: dict) -> dict:
    """Features as the event contract wants them: str names, JSON values, no ``None``.

    >>> encode_x({0: 1.5, "b": None, "c": "s"})
    {'0': 1.5, 'c': 's'}
    """
    return {str(k): encode_value(v) for k, v in x.items() if v is not None}


def rows(name: str, seed: int | None) -> tuple[Iterator[tuple[dict, Any]], int | None]:
    """``(x, y)`` rows of dataset or generator ``name`` and their count (None: unbounded)."""
    shipped = shipped_datasets()
    if name in shipped:
        dataset = shipped[name]()
        return iter(dataset), dataset.n_samples
    gens = generators()
    if name in gens:
        cls = gens[name]
        params = inspect.signature(cls).parameters
        dataset = cls(seed=seed) if "seed" in params else cls()
        return iter(dataset), getattr(dataset, "n_samples", None)
    raise UnknownDataset(f"unknown dataset {name!r}; choose one of: {', '.join(available())}")
