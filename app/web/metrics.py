"""Prometheus exposition of the pipeline's own numbers, computed when ``/metrics`` is scraped.

Nothing is counted twice: a custom collector reads the worker's figures (``app/web/figures.py``: the
live shards, the counter tables, the engine and Faust's monitor) at scrape time, so there is no
second set of counters to keep in step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app.web.figures import Figures

CONTENT_TYPE = "text/plain"  # Prometheus text format 0.0.4 (aiohttp adds the charset)


class PipelineCollector:
    """Prometheus collector of streamlearn's counters and gauges, read from ``figures``."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Iterator:
        predicted = CounterMetricFamily(
            "streamlearn_predictions", "Predictions made.", labels=["model", "shard"]
        )
        learned = CounterMetricFamily(
            "streamlearn_learned", "Labelled events learned.", labels=["model", "shard"]
        )
        metric = GaugeMetricFamily(
            "streamlearn_model_metric",
            "Prequential metric of a model shard since it started.",
            labels=["model", "shard", "metric"],
        )
        rolling = GaugeMetricFamily(
            "streamlearn_model_metric_rolling",
            "The same metric over the last 1000 scored labels.",
            labels=["model", "shard", "metric"],
        )
        age = GaugeMetricFamily(
            "streamlearn_checkpoint_age_seconds",
            "Seconds since the shard's last checkpoint.",
            labels=["shard"],
        )
        duplicates = CounterMetricFamily(
            "streamlearn_duplicates_dropped",
            "Copies re-sent upstream after a crash and dropped by the shard.",
            labels=["shard"],
        )
        promotions = CounterMetricFamily(
            "streamlearn_promotions",
            "Challengers promoted to champion on the shard ([promotion]).",
            labels=["shard"],
        )
        rollbacks = CounterMetricFamily(
            "streamlearn_rollbacks",
            "Models rolled back to a kept version by command on the shard.",
            labels=["shard"],
        )
        champion = GaugeMetricFamily(
            "streamlearn_champion",
            "1 for the model whose predictions the shard's events get on the predictions topic.",
            labels=["model", "shard"],
        )
        drifts = CounterMetricFamily(
            "streamlearn_drifts",
            "Drifts the [drift] detector found in the model's errors on the shard.",
            labels=["model", "shard"],
        )
        worker = self.figures
        ages = worker.checkpoint_ages(time.time())
        for shard, models in sorted(worker.shards().items()):
            s = str(shard)
            duplicates.add_metric([s], models.n_duplicates)
            promotions.add_metric([s], models.n_promotions)
            rollbacks.add_metric([s], models.n_rollbacks)
            if models.champion:
                champion.add_metric([models.champion, s], 1)
            if shard in ages:
                age.add_metric([s], ages[shard])
            for name, live in models.models.items():
                drifts.add_metric([name, s], live.n_drifts)
                predicted.add_metric([name, s], live.n_predicted)
                learned.add_metric([name, s], live.n_learned)
                for key, value in live.metric_values().items():
                    metric.add_metric([name, s, key], value)
                for key, value in live.rolling_values().items():
                    rolling.add_metric([name, s, key], value)
        yield from (predicted, learned, metric, rolling, age, duplicates, promotions, champion)
        yield drifts
        yield rollbacks

        pipeline = CounterMetricFamily(
            "streamlearn_pipeline_events",
            "Dead letters, orphan labels, expired events, model errors.",
            labels=["kind"],
        )
        for kind, value in sorted(worker.counters().items()):
            pipeline.add_metric([kind], value)
        yield pipeline

        received = CounterMetricFamily(
            "streamlearn_messages_received", "Messages read, by topic.", labels=["topic"]
        )
        for topic, value in sorted(worker.messages_received().items()):
            received.add_metric([topic], value)
        yield received
        lag = GaugeMetricFamily(
            "streamlearn_consumer_lag",
            "End offset minus read offset.",
            labels=["topic", "partition"],
        )
        for tp, lag_value in worker.consumer_lag().items():
            lag.add_metric([tp[0], str(tp[1])], lag_value)
        yield lag


def registry_of(figures: Figures) -> CollectorRegistry:
    """A Prometheus registry of one :class:`PipelineCollector` of ``figures``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(figures))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text the ``/metrics`` endpoint serves."""
    return generate_latest(registry)
