"""``faust -A app replay DATASET``: stream a dataset into the events (and labels) topics.

Examples::

    faust -A app replay phishing                      # River's shipped dataset, labels inline
    faust -A app replay hyperplane --limit 100000 --seed 3
    faust -A app replay fraud --rate 20               # delayed labels on the labels topic

Exits 0 once the broker has acknowledged every message; non-zero with a clear message otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
import faust
import orjson
from aiokafka import AIOKafkaProducer
from faust.cli import AppCommand, argument, option
from tqdm import tqdm

from app.commands.datasets import available, encode_x, rows, task
from app.commands.fraud import FraudStream
from app.config import Config
from app.kafka.admin import bootstrap_servers, ensure_topics
from app.kafka.auth import client_options
from app.models.label_rules import task_problem
from app.settings import Settings

DEFAULT_UNBOUNDED_LIMIT = 10_000
JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dataset_messages(
    name: str, seed: int | None, limit: int | None, label_delay: float
) -> tuple[Iterator[tuple[str, dict]], int]:
    """``("events" | "labels", value)`` pairs of ``name`` and the number of events to send."""
    if name == "fraud":
        n = limit or DEFAULT_UNBOUNDED_LIMIT
        return FraudStream(seed=42 if seed is None else seed, label_delay=label_delay).messages(
            n
        ), n
    source, size = rows(name, seed)
    n = min(limit, size) if (limit and size) else (limit or size or DEFAULT_UNBOUNDED_LIMIT)
    start = time.time() - n  # one second apart, the last one now: never ahead of the clock

    def events() -> Iterator[tuple[str, dict]]:
        for i, (x, y) in zip(range(n), source, strict=False):
            event: dict[str, Any] = {
                "id": f"{name}-{i}",
                "key": None,
                "ts": start + i,
                "x": encode_x(x),
            }
            if y is not None:
                event["y"] = y.item() if hasattr(y, "item") else y
            yield "events", event

    return events(), n


async def produce(
    messages: Iterator[tuple[str, dict]],
    total: int,
    rate: float,
    topics: dict[str, str],
    settings: Settings,
) -> int:
    """Send every message, paced at ``rate`` events/s (0: as fast as possible), to the broker
    ``settings`` name; return the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        **client_options(settings),
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        enable_idempotence=True,
    )
    await producer.start()
    sent = 0
    pending: list[asyncio.Future] = []
    bar = tqdm(total=total, unit="ev", desc="replay", file=sys.stderr, disable=None)
    started = time.monotonic()
    try:
        for kind, value in messages:
            key = (value.get("key") or value["id"]) if kind == "events" else value["id"]
            pending.append(
                await producer.send(
                    topics[kind], orjson.dumps(value, option=JSON), key=key.encode()
                )
            )
            if kind == "events":
                sent += 1
                bar.update(1)
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        bar.close()
        await producer.stop()
    return sent


def dataset_check(config: Config) -> Callable[[click.Context, click.Parameter, str], str]:
    """The check of the ``DATASET`` argument: a dataset the replay can stream and ``config``'s
    models can learn (checked while the command line is parsed, so that a mistake is one line
    of usage, not a worker's crash)."""

    def check(ctx: click.Context, param: click.Parameter, name: str) -> str:
        names = available()
        if name not in names:
            raise click.BadParameter(f"unknown dataset {name!r}; choose one of: {', '.join(names)}")
        problem = task_problem(task(name), list(config.specs))
        if problem is not None:
            raise click.BadParameter(f"{name!r} is {problem} ({config.named('model')})")
        return name

    return check


def _at_least(minimum: float) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value < minimum:
            raise click.BadParameter(f"must be >= {minimum:g}, got {value:g}")
        return value

    return check


def install(app: faust.App, config: Config) -> None:
    """Add ``faust -A app replay`` to ``app``: it writes to ``config``'s topics."""

    @app.command(
        argument("dataset", callback=dataset_check(config)),
        option(
            "--limit",
            type=int,
            default=None,
            callback=_at_least(1),
            help="Events to send (default: all; 10000 for endless generators).",
        ),
        option(
            "--rate",
            type=float,
            default=0.0,
            callback=_at_least(0),
            help="Events per second; 0 = as fast as possible.",
        ),
        option("--seed", type=int, default=None, help="Seed of synthetic generators and of fraud."),
        option(
            "--label-delay",
            type=float,
            default=600.0,
            help="fraud: seconds of event time before a label.",
        ),
    )
    async def replay(
        self: AppCommand,
        dataset: str,
        limit: int | None,
        rate: float,
        seed: int | None,
        label_delay: float,
    ) -> None:
        """Stream a River dataset, a River generator or the fraud stream into the events topic."""
        messages, total = dataset_messages(dataset, seed, limit, label_delay)
        topics = {"events": config.events_topic, "labels": config.labels_topic}
        await ensure_topics(
            config.broker,
            list(topics.values()),
            config.partitions,
            config.replication,
            client_options(config.settings),
        )
        sent = await produce(messages, total, rate, topics, config.settings)
        self.say(f"replay: {sent} events of {dataset!r} acknowledged by the broker")


__all__ = ["available", "install"]
