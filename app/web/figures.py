"""What the web views and the Prometheus collector read of the worker: an interface, no state.

The shard keeper's ``WorkerFigures`` (``agents/shards.py``) is one; ``app/worker.py`` hands it
to ``app/web/views.py`` and ``app/web/metrics.py``, which read it when asked, so ``app/`` never
imports ``agents/`` or ``tables/``. :class:`NoFigures` answers with empty figures (tests).
"""

from __future__ import annotations

from typing import Any, Protocol

from app.models.shard import ShardModels


class Figures(Protocol):
    """The figures of this worker, computed when asked for."""

    def shards(self) -> dict[int, ShardModels]:
        """The live models of the shards this worker owns, by shard."""

    def model_names(self) -> set[str]:
        """The names of the configured models."""

    def checkpoint_ages(self, now: float) -> dict[int, float]:
        """Seconds since each owned shard's last checkpoint (wall clock)."""

    def stats(self) -> dict[str, Any]:
        """The worker's own part of ``GET /stats/``: counters, checkpoints, engine, lag."""

    def counters(self) -> dict[str, int]:
        """Dead letters, expired joins, ... summed over this worker's partitions."""

    def messages_received(self) -> dict[str, int]:
        """Messages read per topic."""

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """``{(topic, partition): end offset - read offset}`` of what this worker reads."""

    def versions(self, name: str) -> list[dict]:
        """The kept versions of model ``name`` on the shards held here (their descriptions)."""

    def model_events(self) -> list[dict]:
        """The last model events (promotions, drifts, rollbacks, ...) of the shards held here,
        newest first."""

    def features(self, key: str) -> dict[str, Any] | None:
        """One key's windows at its latest event, or None if this worker has none."""


class NoFigures:
    """The figures of a process that runs no engine."""

    def shards(self) -> dict[int, ShardModels]:
        return {}

    def model_names(self) -> set[str]:
        return set()

    def checkpoint_ages(self, now: float) -> dict[int, float]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {}

    def counters(self) -> dict[str, int]:
        return {}

    def messages_received(self) -> dict[str, int]:
        return {}

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        return {}

    def features(self, key: str) -> dict[str, Any] | None:
        return None

    def versions(self, name: str) -> list[dict]:
        return []

    def model_events(self) -> list[dict]:
        return []
