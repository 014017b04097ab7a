"""Faust tables: one kind of state per module, each changelog-backed.

Table keys are JSON (str and int keys come back from the changelog as themselves); values are
orjson, except model checkpoints (signed pickle, see ``app/codec.py``).
"""

from __future__ import annotations

from typing import Any

from app import app


def new_table(name: str, *, value_serializer: str = "orjson", **kwargs: Any):
    """``app.Table(name, **kwargs)`` whose changelog uses ``value_serializer`` for values.

    Faust takes a table's serializers from its ``value_type`` record and falls back to ``json``;
    the codecs are set here instead so tables of plain dicts use the app's own codecs.
    """
    table = app.Table(name, **kwargs)
    table.key_serializer = "json"
    table.value_serializer = value_serializer
    return table
