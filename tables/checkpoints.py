"""Model checkpoints, one entry per model shard (= partition of the events topic the engine reads).

Key: shard number. Value: bytes: :meth:`app.models.shard.ShardModels.snapshot` (every model of the
shard, its metrics and counters, ``offset``: the last ``scoring`` offset it covers, and ``origins``:
the last events offset it took, and per upstream partition the last origin offset of re-keyed events
and joined labels), signed and pickled by ``app.models.codec.RiverCodec``. The table stores raw
bytes so that Faust's recovery never unpickles anything: a checkpoint is verified and decoded here,
and one that fails stops the worker with the reason instead of being replaced by a fresh model.

:class:`Checkpoints` is what every shard's checkpoint goes through (``tables/live_shard.py``):
the codec, the outbox its changelog writes are sent with, and whether output was lost.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from typing import Any

import faust

from app.config import Config
from app.kafka.outbox import FlushTimeout, Outbox
from app.models.codec import CheckpointError, RiverCodec
from app.models.drift import DriftRule
from app.models.promotion import PromotionRule
from app.models.shard import ShardModels
from app.models.spec import ModelSpec

log = logging.getLogger(__name__)

#: A checkpoint fails (and is tried again) when Kafka has not acknowledged the output it covers
#: within this many seconds, instead of holding the shard's next checkpoints back unseen.
FLUSH_TIMEOUT = 60.0


class OutputLost(CheckpointError):
    """Kafka refused (or timed out) the output of events a checkpoint would cover."""


def checkpoints_table(app: faust.App, config: Config) -> Any:
    """The ``shard-checkpoints`` table of ``app``: each shard's latest checkpoint."""
    return app.Table(
        "shard-checkpoints",
        value_type=bytes,  # signed pickles, decoded here (never by Faust's recovery)
        default=None,
        # one message per checkpoint: let the changelog take what the producer may send
        extra_topic_configs={"max.message.bytes": str(config.checkpoint_max_bytes + 1024 * 1024)},
        help="Latest checkpoint of each model shard (int to signed pickle).",
    )


class Checkpoints:
    """Reads shards' checkpoints from the table; the codec and outbox their writes go through."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        secret: str,
        table: Any,
        max_bytes: int = 2**62,
        rule: PromotionRule | None = None,
        drift: DriftRule | None = None,
        snapshot_every: int = 0,
    ) -> None:
        self.specs = list(specs)
        #: a version of a model every this many labels (0: never by count)
        self.snapshot_every = snapshot_every
        #: the promotion rule and the drift detectors every shard applies (None: none)
        self.rule = rule
        self.drift = drift
        self.codec = RiverCodec(secret)
        self.table = table
        #: the largest checkpoint that may be written (STREAMLEARN_CHECKPOINT_MAX_BYTES)
        self.max_bytes = max_bytes
        #: where checkpoints, window values and the engine's output go (None: engine not running)
        self.outbox: Outbox | None = None
        #: set once Kafka refused output of taken events: no checkpoint is written after it
        self.lost: OutputLost | None = None

    def read(self, shard: int) -> tuple[ShardModels, bool]:
        """``shard``'s models from its checkpoint, else fresh; and whether one was restored."""
        raw = self.table.get(shard)
        if raw is None:
            log.info("shard %d: no checkpoint, starting fresh models", shard)
            return self.fresh(shard), False
        try:
            models = ShardModels.restore(
                shard, self.specs, self.codec.loads(raw), self.rule, self.drift, self.snapshot_every
            )
        except (
            CheckpointError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            KeyError,
            TypeError,
        ) as exc:
            raise CheckpointError(
                f"the checkpoint of shard {shard} (table {self.table.name!r}) cannot be "
                f"used: {exc!r}. Refusing to replace a trained model with a fresh one: check "
                "STREAMLEARN_CHECKPOINT_SECRET, or start over under a new STREAMLEARN_ID."
            ) from exc
        log.info("shard %d: %s", shard, describe_restored(models))
        for change in models.changes:  # the config's models changed since the checkpoint
            log.warning("shard %d: model %s", shard, change)
        return models, True

    def fresh(self, shard: int) -> ShardModels:
        """Fresh models for ``shard``, with the rules every shard applies."""
        return ShardModels.fresh(shard, self.specs, self.rule, self.drift, self.snapshot_every)

    def output_lost(self, shard: int, exc: BaseException) -> OutputLost:
        """Remember that output was lost: no checkpoint of this process may be written now."""
        if self.lost is None:
            self.lost = OutputLost(
                f"Kafka did not take output of the events shard {shard} learned since its last "
                f"checkpoint ({exc!r}), after the producer's own retries: stopping, so that no "
                "checkpoint covers events whose predictions are lost. The next start learns "
                "them again from that checkpoint and writes their output again."
            )
        return self.lost

    async def flush(self, shard: int, timeout: float | None = None) -> None:
        """Flush the outbox: a timeout fails only this checkpoint, any other error is lost
        output."""
        try:
            await self.outbox.flush(timeout)
        except FlushTimeout:
            raise
        except Exception as exc:
            raise self.output_lost(shard, exc) from exc


def describe_restored(models: ShardModels) -> str:
    """What a restored checkpoint covers, for the log: the events it took (by offset of the
    topic the engine reads, and of each raw partition a re-key stage copied), the scoring
    offset, and what the models learned.

    >>> print(describe_restored(ShardModels(0, {}, offset=-1, origins={"e0": 4999, "r2": 17})))
    restored checkpoint: events up to offset 4999 (raw partition 2 up to 17),
    scoring offset -1 (no joined label yet)
    """
    events = models.origins.get(f"e{models.shard}")
    parts = [f"events up to offset {events}" if events is not None else "no events yet"]
    raw = sorted((int(k[1:]), v) for k, v in models.origins.items() if k.startswith("r"))
    if raw:
        parts[0] += " (" + ", ".join(f"raw partition {p} up to {o}" for p, o in raw) + ")"
    scoring = f"scoring offset {models.offset}"
    if models.offset < 0:
        scoring += " (no joined label yet)"
    learned = "".join(f", {n} learned {m.n_learned}" for n, m in sorted(models.models.items()))
    return f"restored checkpoint: {parts[0]}, {scoring}{learned}"
