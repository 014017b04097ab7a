"""Versions of the models, kept in Kafka: the last STREAMLEARN_SNAPSHOT_KEEP of each model of
each shard, signed like checkpoints.

Key: ``"<model>:<shard>:<slot>"``, slot = version modulo the number kept, so that a compacted
changelog keeps exactly the last ones. Value: bytes: what the version is (JSON: name, shard,
version, spec, role, labels learned, metrics, the label that caused it, the reason), a zero
byte, then the signed pickle of ``{"model", "metric", "meta"}`` (``app.models.codec.sign``),
taken by :meth:`app.models.shard.ShardModels.take_version` when the version was made. Written
only by a shard's checkpoint (``tables/live_shard.py``), before the checkpoint itself, as
window values are; a version lost in a crash is made again by the replay, at the same label.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from app.config import Config
from app.models.codec import sign, unpickle, verify

#: separates a value's description from its signed pickle (never in orjson's output)
SEPARATOR = b"\x00"


def versions_table(app: faust.App, config: Config) -> Any:
    """The ``model-versions`` table of ``app``."""
    return app.Table(
        "model-versions",
        value_type=bytes,  # described and signed here (never decoded by Faust's recovery)
        default=None,
        extra_topic_configs={"max.message.bytes": str(config.checkpoint_max_bytes + 1024 * 1024)},
        help="The last versions of each model of each shard (str to JSON + signed pickle).",
    )


def version_key(name: str, shard: int, version: int, keep: int) -> str:
    """The key of a version: the last ``keep`` of a model of a shard take turns on ``keep`` keys.

    >>> version_key("lr", 2, 13, 10)
    'lr:2:3'
    """
    return f"{name}:{shard}:{version % keep}"


def encode(meta: dict, payload: bytes, secret: str) -> bytes:
    """A version's value: its description, then its pickle signed with ``secret``."""
    return orjson.dumps(meta) + SEPARATOR + sign(payload, secret)


def describe(value: bytes) -> dict:
    """What a stored version is (its description, not its model).

    >>> describe(encode({"name": "lr", "version": 3}, b"...", "k"))
    {'name': 'lr', 'version': 3}
    """
    return orjson.loads(value.partition(SEPARATOR)[0])


def load(value: bytes, secret: str) -> dict:
    """A stored version's ``{"model", "metric", "meta"}``, once its signature checks (a
    ``CheckpointError`` if not), unpickled from River's classes only."""
    return unpickle(verify(value.partition(SEPARATOR)[2], secret))


def stored_versions(table: Any, name: str) -> list[dict]:
    """The descriptions of the versions of model ``name`` held here, by shard then version."""
    prefix = f"{name}:"
    found = [describe(v) for k, v in table.items() if k.startswith(prefix) and v is not None]
    return sorted(found, key=lambda m: (m["shard"], m["version"]))
