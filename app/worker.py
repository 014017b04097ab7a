"""The worker, assembled in one place, top to bottom, as Faust's own examples declare an app.

Reads the settings (``app/settings.py``); builds, in this order: the :class:`~app.config.Config`,
the schema registry's client when a topic is Avro, the Faust app, its topics and tables, the shard
keeper, the engine (which imports the transform), the re-key stage, the label agents, the guard,
the figures and pages of the web view (and the token every request to it needs, when one is set),
and the commands; then makes the data directory (only once everything could be built). The
registry is asked only by ``faust -A app worker``, before the worker starts (the app's
``start_checks``): one that cannot be reached, or refuses the prediction schema registered with
STREAMLEARN_PREDICTIONS_FORMAT=avro, is a start-up error; the other commands (``models
rollback`` in an outage) need no registry, and ``features`` asks it when it reads Avro.

Keeps what it built in a :class:`Worker`; ``app/__init__.py`` builds one per process, when
``app.app`` is first asked for (``faust -A app ...``), and turns a start-up error into one line
and exit status 2. No other module builds state when imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents import control, labels, learner, validate
from agents import shards as shard_keeper
from agents.engine import Engine
from agents.guard import Guard
from agents.rekey import Rekey
from agents.shards import FaustConsumer, Scorer, Shards, WorkerFigures
from app.commands import features as features_command
from app.commands import models as models_command
from app.commands import replay
from app.config import Config
from app.contracts import prediction_avro
from app.faust_app import (
    StartRefused,
    StreamlearnApp,
    build_app,
    datadir,
    settings_warnings,
    warn_at_start,
)
from app.kafka import registry as schema_registry
from app.kafka.topics import Topics
from app.kafka.transaction import shard_outboxes
from app.models.join import Expiry
from app.settings import Settings
from app.web import auth, predict, views
from tables.checkpoints import Checkpoints, checkpoints_table
from tables.counters import Counters
from tables.live_shard import ShardTables
from tables.pending import pending_table
from tables.versions import versions_table
from tables.windows import windows_table


@dataclass
class Worker:
    """Every part of one worker (tests reach them here)."""

    config: Config
    app: StreamlearnApp
    topics: Topics
    counters: Counters
    pending: Any
    expiry: Expiry
    shards: Shards
    engine: Engine
    rekey: Rekey | None
    registry: schema_registry.RegistryClient | None
    figures: WorkerFigures
    validate_labels: Any
    join_labels: Any
    learn: Any


def prediction_schemas(config: Config) -> dict[str, int]:
    """STREAMLEARN_PREDICTIONS_FORMAT=avro: the prediction schema registered under
    ``<predictions>-value`` (and ``<shadow>-value`` when there are challengers); the schema id
    of each topic. A registry that refuses it is a RegistryError (one line, exit 2)."""
    topics = [config.predictions_topic]
    if len(config.specs) > 1:
        topics.append(config.shadow_predictions_topic)
    text = prediction_avro.schema_text()
    ids = schema_registry.register_at_start(config.settings, {f"{t}-value": text for t in topics})
    return {t: ids[f"{t}-value"] for t in topics}


def registry_at_start(config: Config, engine: Engine) -> None:
    """The registry answers, and the engine has the ids of its prediction schemas
    (STREAMLEARN_PREDICTIONS_FORMAT=avro); else a :class:`StartRefused` with the reason."""
    try:
        schema_registry.check_at_start(config.settings)
        if config.settings.predictions_format == "avro":
            engine.use_prediction_ids(prediction_schemas(config))
    except schema_registry.RegistryError as exc:
        raise StartRefused(str(exc)) from None


def build(settings: Settings) -> Worker:
    """The worker ``settings`` describe, every part added to its Faust app."""
    config = Config.build(settings)  # every model, feature and mapping parsed, once
    # Avro anywhere: the one client (a RegistryError if its settings cannot be used); its
    # session is opened by what first asks, and closed by the engine when it stops
    needed = schema_registry.needed(settings)
    registry = schema_registry.RegistryClient.configured(settings) if needed else None
    app = build_app(config)
    topics = Topics(app, config)

    # state: each kind in a changelog-backed table
    counters = Counters.of(app)
    pending = pending_table(app)
    checkpoints = checkpoints_table(app, config)
    shard_tables = ShardTables(
        checkpoints=Checkpoints(
            config.specs,
            config.checkpoint_secret,
            checkpoints,
            config.checkpoint_max_bytes,
            config.promotion,
            config.drift,
            config.snapshot_every,
        ),
        windows=windows_table(app, config),
        counters=counters,
        anchor=topics.scoring.get_topic_name(),
        versions=versions_table(app, config),
        keep=config.snapshot_keep,
        exactly_once=config.exactly_once,
    )

    # the stages: the shards and the engine that reads their events, the re-key stage
    # (exactly_once: each shard's output in its own transactions, app/kafka/transaction.py)
    conf = app.conf
    opener = (
        shard_outboxes(config, conf.producer_request_timeout, conf.producer_max_request_size)
        if config.exactly_once
        else None
    )
    shards = Shards(config, shard_tables, FaustConsumer(app, topics.scoring), opener)
    shard_keeper.install(app, shards, checkpoints)
    engine = Engine(app, config, shards, topics, counters, registry)
    if needed:  # (the worker only, before it starts: a StartRefused is one line, exit 2)
        app.start_checks.append(lambda: registry_at_start(config, engine))
    app.service(engine)  # started once the tables are recovered, stopped before them
    rekey = Rekey(app, config, topics, registry) if config.rekey else None
    if rekey is not None:
        app.service(rekey)

    # the labels: checked, joined with their events' features, learned
    validate_labels = validate.install(app, config, topics, counters, registry)
    expiry = Expiry()
    join_labels = labels.install(app, config, topics, pending, counters, expiry)
    learn = learner.install(app, shards, engine, topics, counters)
    control.install(app, shards, engine, topics)  # commands: promote, rollback

    # what watches and shows the worker, and the commands beside it
    app.sensors.add(Guard(app, config))
    figures = WorkerFigures(app, shards, counters)
    figures.engine = engine
    figures.readers.extend(r for r in (engine, rekey) if r is not None)
    views.install(app, figures, lambda: settings_warnings(config))
    scorer = Scorer(app, shards, config.partitions)
    predict.install(
        app,
        scorer,
        engine.intake,
        config.predict_max,
        config.predict_max_bytes,
        config.web_token,
    )
    auth.install(app, config.web_token)  # the whole web port, Faust's own pages too
    warn_at_start(app, config)
    replay.install(app, config)
    features_command.install(app, config, registry)
    models_command.install(app, config)

    datadir(config).mkdir(parents=True, exist_ok=True)  # (Faust does not make missing parents)
    return Worker(
        config=config,
        app=app,
        topics=topics,
        counters=counters,
        pending=pending,
        expiry=expiry,
        shards=shards,
        engine=engine,
        rekey=rekey,
        registry=registry,
        figures=figures,
        validate_labels=validate_labels,
        join_labels=join_labels,
        learn=learn,
    )
