"""Prometheus exposition of the pipeline's own numbers, computed when ``/metrics`` is scraped.

Nothing is counted twice: a custom collector reads the live shards, the counter tables and Faust's
monitor at scrape time, so there is no second set of counters to keep in step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app import app, settings
from tables.counters import totals
from tables.models import live_shards

CONTENT_TYPE = "text/plain"  # Prometheus text format 0.0.4 (aiohttp adds the charset)


class PipelineCollector:
    """Prometheus collector of streamlearn's counters and gauges."""

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
        now = time.time()
        for shard, models in sorted(live_shards.shards.items()):
            s = str(shard)
            duplicates.add_metric([s], models.n_duplicates)
            if shard in live_shards.last_checkpoint_wall:
                age.add_metric([s], now - live_shards.last_checkpoint_wall[shard])
            for name, live in models.models.items():
                predicted.add_metric([name, s], live.n_predicted)
                learned.add_metric([name, s], live.n_learned)
                for key, value in live.metric_values().items():
                    metric.add_metric([name, s, key], value)
                for key, value in live.rolling_values().items():
                    rolling.add_metric([name, s, key], value)
        yield from (predicted, learned, metric, rolling, age, duplicates)

        pipeline = CounterMetricFamily(
            "streamlearn_pipeline_events",
            "Dead letters, orphan labels, expired events, model errors.",
            labels=["kind"],
        )
        for kind, value in sorted(totals().items()):
            pipeline.add_metric([kind], value)
        yield pipeline

        received = CounterMetricFamily(
            "streamlearn_messages_received", "Messages read, by topic.", labels=["topic"]
        )
        for topic, value in sorted(messages_received().items()):
            received.add_metric([topic], value)
        yield received
        lag = GaugeMetricFamily(
            "streamlearn_consumer_lag",
            "End offset minus read offset.",
            labels=["topic", "partition"],
        )
        for tp, lag_value in consumer_lag().items():
            lag.add_metric([tp[0], str(tp[1])], lag_value)
        yield lag


def messages_received() -> dict[str, int]:
    """Messages read per topic: by Faust's consumer and by the batch engine."""
    from agents.engine import engine

    out = dict(app.monitor.messages_received_by_topic)
    if engine is not None:
        topic = settings.events_topic
        out[topic] = out.get(topic, 0) + engine.n_received
    return out


def consumer_lag() -> dict[tuple[str, int], int]:
    """``{(topic, partition): end offset - read offset}`` for what this worker reads."""
    monitor = app.monitor
    out = {}
    for tp, end in monitor.tp_end_offsets.items():
        read = monitor.tp_read_offsets.get(tp)
        if read is not None:
            out[(tp.topic, tp.partition)] = max(0, end - read - 1)
    from agents.engine import engine  # the engine reads the events topic outside Faust

    if engine is not None:
        out.update(engine.lag)
    return out


registry = CollectorRegistry(auto_describe=False)
registry.register(PipelineCollector())


def exposition() -> bytes:
    """The text the ``/metrics`` endpoint serves."""
    return generate_latest(registry)
