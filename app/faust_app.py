"""The Faust app of streamlearn (``app.app``): ``faust -A app worker -l info`` runs it.

Built once, when first imported: checks that the settings' models can be built, registers the
codecs, builds the app from the settings, imports the transform and creates the data directory;
``app/__init__.py`` turns a start-up error into one line and exit status 2. Topics, tables,
agents, views and the commands are found by ``autodiscover`` (a module of ours that fails to
import stops the start-up: :class:`StreamlearnApp`); this module imports none of them.
"""

from __future__ import annotations

import logging
import sys

import faust

from app import compat
from app.contracts.transform import configured as configured_transform
from app.kafka.auth import faust_credentials
from app.models import codec
from app.settings import DEV_SECRET, settings

__all__ = ["StartRefused", "StreamlearnApp", "StreamlearnWorker", "app"]


@compat.raise_autodiscovery_errors
class StreamlearnApp(faust.App):
    """Faust's app, except that a module of ours that fails to import stops the start-up: Faust
    logs a warning and runs on without that module's agents, a worker that reads nothing."""


class StartRefused(RuntimeError):
    """Kafka refused the worker before it started (a wrong password, a plaintext client on a
    TLS port, no ACL on its group): the text says what to check. The worker ends as a start-up
    error does: this one line on stderr and exit status 2, no traceback."""


class StreamlearnWorker(faust.Worker):
    """Faust's worker, except that a :class:`StartRefused` raised while it starts ends it as a
    start-up error (mode's worker logs a traceback and exits 1)."""

    refused: StartRefused | None = None

    async def start(self) -> None:
        try:
            await super().start()
        except StartRefused as exc:
            self.refused = exc  # the worker then stops what started, as on a signal

    def execute_from_commandline(self) -> None:
        try:
            super().execute_from_commandline()
        except SystemExit:
            if self.refused is None:
                raise
        print(f"streamlearn: {self.refused}", file=sys.stderr, flush=True)
        raise SystemExit(2)


# the models the settings name are parsed once, here, before anything starts: a model that
# cannot be built is a start-up error (a SettingsError naming the setting)
settings.specs  # noqa: B018
codec.register()
#: one directory per app id: a store holds one changelog offset per partition, whatever the
#: topic, so another app id's store would be taken as this app's, stale windows and models
app_datadir = settings.datadir / settings.id

app = StreamlearnApp(
    settings.id,
    broker=settings.broker,
    broker_credentials=faust_credentials(settings),
    store=settings.store,
    datadir=str(app_datadir),
    autodiscover=[
        "agents",
        "tables",
        "app.kafka.topics",
        "app.web.views",
        "app.commands.replay",
        "app.commands.features",
    ],
    origin="app",
    Worker=StreamlearnWorker,
    key_serializer="raw",
    value_serializer="orjson",
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication,
    table_standby_replicas=settings.standby_replicas,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    processing_guarantee=settings.processing_guarantee,
    web_port=settings.web_port,
    web_bind=settings.web_bind,
    web_host=settings.web_bind,
    consumer_auto_offset_reset="earliest",
    broker_max_poll_records=1000,
    # a checkpoint is one message: a grown tree model easily passes Kafka's 1 MB default
    producer_max_request_size=settings.checkpoint_max_bytes + 1024 * 1024,
    stream_buffer_maxsize=8192,
    table_cleanup_interval=min(30.0, settings.window_expires),
)

# The transform is imported (then again by the engine) once the app exists, as a transform may
# import streamlearn's own modules; a data directory is made only once everything could be built.
configured_transform(settings)
app_datadir.mkdir(parents=True, exist_ok=True)  # (Faust does not make missing parents)


def settings_warnings() -> list[str]:
    """What the settings do that production should not: logged at every worker start
    (:func:`warn_at_start`) and listed in ``GET /stats/`` as ``warnings`` (the dashboard shows
    them). Never a secret's value."""
    out = []
    if settings.checkpoint_secret == DEV_SECRET:
        out.append(
            "STREAMLEARN_CHECKPOINT_SECRET is not set: model checkpoints are signed with the "
            "public development secret. Set it to a private value in production."
        )
    return out


@app.task
async def warn_at_start() -> None:
    """Log :func:`settings_warnings` once the worker runs: logged when this module is imported,
    before Faust sets up logging, a warning was lost."""
    for text in settings_warnings():
        logging.getLogger(__name__).warning(text)
