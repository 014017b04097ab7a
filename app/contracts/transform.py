"""The user's transform (``STREAMLEARN_TRANSFORM=package.module:function``), loaded and applied.

Reads: the ``transform`` setting; imports the user's module once, when the engine is made,
from the import path with the config file's folder added last (so a ``fraud_rules.py`` beside
``streamlearn.toml`` is found; an installed package of the same name wins).
Gives: :func:`load`, the function or None; a bad path is a start-up error (``TransformError``)
that says what could not be found, naming the setting as the user wrote it (the environment
variable or the config file's key). The engine applies the function to each event after the
mapping and before windows and models: an event dict in, an event dict (checked again as any
event is) or None (dropped, counted) out; an exception dead-letters that event with its type and
message.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings


class TransformError(ValueError):
    """``STREAMLEARN_TRANSFORM`` names nothing that can be called."""


def configured(config: Settings) -> Callable[[dict], dict | None] | None:
    """The transform ``config`` names (None: none), imported with the config file's folder on
    the import path, errors naming the setting where the user wrote it."""
    folder = Path(config.config_file).resolve().parent if config.config_file else None
    return load(config.transform, config.named("transform"), folder)


def load(
    spec: str, named: str | None = None, folder: Path | None = None
) -> Callable[[dict], dict | None] | None:
    """The function ``spec`` (``package.module:function``) names, or None for an empty spec.
    ``named``: the setting as an error shows it (default ``STREAMLEARN_TRANSFORM=<spec>``);
    ``folder``: added at the end of the import path first.

    >>> load("json:dumps").__name__
    'dumps'
    >>> load("json.nope:f")
    Traceback (most recent call last):
    app.contracts.transform.TransformError: STREAMLEARN_TRANSFORM='json.nope:f': cannot import
    json.nope ...
    """
    if not spec:
        return None
    named = named or f"STREAMLEARN_TRANSFORM={spec!r}"
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise TransformError(f"{named}: expected package.module:function")
    if folder is not None and str(folder) not in sys.path:
        sys.path.append(str(folder))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module: any error is theirs to see
        where = f" (looked in the config file's folder {folder} too)" if folder else ""
        raise TransformError(
            f"{named}: cannot import {module_name}{where} ({type(exc).__name__}: {exc})"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise TransformError(f"{named}: {module_name} has no function {name!r}")
    return function
