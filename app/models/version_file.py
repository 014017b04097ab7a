"""A kept version of a model, as bytes: in the versions table and in an exported file. Pure: no
Faust, no Kafka.

A version is its description (JSON: name, shard, version, spec, role, labels learned, metrics,
the label that caused it, the reason), a zero byte, then the signed pickle of
``{"model", "metric", "meta"}`` (``app/models/signing.py``). A file written by ``faust -A app
models export`` is :data:`MAGIC` and the same bytes; :func:`load_model` reads it back, once its
signature checks, as the River estimator it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.models.signing import CheckpointError, sign, unpickle, verify

#: separates a version's description from its signed pickle (never in orjson's output)
SEPARATOR = b"\x00"
#: the first bytes of an exported model file
MAGIC = b"streamlearn model version 1\n"


def encode(meta: dict, payload: bytes, secret: str) -> bytes:
    """A version's bytes: its description, then its pickle signed with ``secret``."""
    return orjson.dumps(meta) + SEPARATOR + sign(payload, secret)


def describe(value: bytes) -> dict:
    """What a version is (its description; its model is not read).

    >>> describe(encode({"name": "lr", "version": 3}, b"...", "k"))
    {'name': 'lr', 'version': 3}
    """
    return orjson.loads(value.partition(SEPARATOR)[0])


def load(value: bytes, secret: str) -> dict:
    """A version's ``{"model", "metric", "meta"}``, once its signature checks (a
    ``CheckpointError`` if not), unpickled from River's classes only."""
    return unpickle(verify(value.partition(SEPARATOR)[2], secret))


def write_file(path: Path, value: bytes) -> None:
    """Write a version to ``path`` (through a temporary file: all or nothing)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(MAGIC + value)
    partial.replace(path)


def read_file(path: str | Path, secret: str) -> dict:
    """An exported version's ``{"model", "metric", "meta"}`` (a ``CheckpointError`` if the file
    is not one, or was signed with another secret)."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a model file written by `faust -A app models export`")
    return load(data[len(MAGIC) :], secret)


def load_model(path: str | Path, secret: str) -> Any:
    """The River estimator a file written by ``faust -A app models export`` holds, as the shard
    held it at that version (``secret``: the STREAMLEARN_CHECKPOINT_SECRET it was signed with)."""
    return read_file(path, secret)["model"]
