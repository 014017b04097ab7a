"""The user's transform (``STREAMLEARN_TRANSFORM=package.module:function``), loaded and applied.

Reads: the ``transform`` setting; imports the user's module once, when the engine is made.
Gives: :func:`load`, the function or None; a bad path is a start-up error (``TransformError``)
that says what could not be found. The engine applies the function to each event after the
mapping and before windows and models: an event dict in, an event dict (checked again as any
event is) or None (dropped, counted) out; an exception dead-letters that event with its type and
message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


class TransformError(ValueError):
    """``STREAMLEARN_TRANSFORM`` names nothing that can be called."""


def load(spec: str) -> Callable[[dict], dict | None] | None:
    """The function ``spec`` (``package.module:function``) names, or None for an empty spec.

    >>> load("json:dumps").__name__
    'dumps'
    >>> load("json.nope:f")
    Traceback (most recent call last):
    app.transform.TransformError: STREAMLEARN_TRANSFORM='json.nope:f': cannot import json.nope ...
    """
    if not spec:
        return None
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise TransformError(f"STREAMLEARN_TRANSFORM={spec!r}: expected package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module: any error is theirs to see
        raise TransformError(
            f"STREAMLEARN_TRANSFORM={spec!r}: cannot import {module_name} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise TransformError(
            f"STREAMLEARN_TRANSFORM={spec!r}: {module_name} has no function {name!r}"
        )
    return function
