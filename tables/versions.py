"""Versions of the models, kept in Kafka: the last STREAMLEARN_SNAPSHOT_KEEP of each model of
each shard, signed like checkpoints.

Key: ``"<model>:<shard>:<slot>"``, slot = version modulo the number kept, so that a compacted
changelog keeps exactly the last ones. Value: bytes, ``app/models/version_file.py``'s (a
description, then the signed pickle of the model and its metrics), taken by
:meth:`app.models.shard.ShardModels.take_version` when the version was made. Written only by a
shard's checkpoint (``tables/live_shard.py``), before the checkpoint itself, as
window values are; a version lost in a crash is made again by the replay, at the same label.
"""

from __future__ import annotations

from typing import Any

import faust

from app.config import Config
from app.models.version_file import describe, encode, load


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


__all__ = ["describe", "encode", "load", "stored_versions", "version_key", "versions_table"]


def stored_versions(table: Any, name: str) -> list[dict]:
    """The descriptions of the versions of model ``name`` held here, by shard then version."""
    prefix = f"{name}:"
    found = [describe(v) for k, v in table.items() if k.startswith(prefix) and v is not None]
    return sorted(found, key=lambda m: (m["shard"], m["version"]))
