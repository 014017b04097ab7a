"""The Faust app of streamlearn, and the worker class that runs it.

:func:`build_app` builds the Faust app a :class:`app.config.Config` describes (its codecs
registered, its web URL the one other workers reach it at: ``STREAMLEARN_WEB_URL``);
``app/worker.py`` adds every part to it, top to bottom, and ``app/__init__.py`` turns a start-up
error into one line and exit status 2. :class:`StreamlearnWorker` does the same for what the
worker alone needs (the app's ``start_checks``: the schema registry) and for Kafka refusing the
worker as it starts. This module imports none of the parts.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import faust

from app import compat
from app.config import Config
from app.kafka.auth import faust_credentials
from app.models import codec
from app.settings import DEV_SECRET

__all__ = ["StartRefused", "StreamlearnApp", "StreamlearnWorker", "build_app", "start_error"]


class StreamlearnApp(faust.App):
    """Faust's app; its parts are added by ``app/worker.py``, not found by autodiscovery (a
    module Faust's autodiscovery fails to import is logged and left out: a worker that reads
    nothing)."""

    #: what ``faust -A app worker`` checks before the worker starts, and no other command (the
    #: schema registry: ``models rollback`` needs none): each raises :class:`StartRefused`
    start_checks: list[Callable[[], None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_checks = []


class StartRefused(RuntimeError):
    """The worker cannot start: Kafka refused it (a wrong password, a plaintext client on a TLS
    port, no ACL on its group), or the schema registry cannot be used; the text says what to
    check. The worker ends as a start-up error does: this one line on stderr and exit status 2,
    no traceback."""


class StreamlearnWorker(faust.Worker):
    """Faust's worker, except that a :class:`StartRefused` raised while it starts ends it as a
    start-up error (mode's worker logs a traceback and exits 1); the app's ``start_checks``
    run first, before anything is logged (only ``faust -A app worker`` makes this worker)."""

    refused: StartRefused | None = None

    def __init__(self, app: faust.App, *args: Any, **kwargs: Any) -> None:
        for check in getattr(app, "start_checks", ()):
            try:
                check()
            except StartRefused as exc:
                start_error(exc)
        super().__init__(app, *args, **kwargs)

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
        start_error(self.refused)


def start_error(reason: BaseException) -> NoReturn:
    """End the command as a start-up error: ``reason`` as one line on stderr, exit status 2,
    no traceback (the user's to fix)."""
    print(f"streamlearn: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


def build_app(config: Config) -> StreamlearnApp:
    """The Faust app ``config`` describes, its codecs registered (:func:`app.worker.build` adds
    the topics, tables, agents, views and commands to it, and makes its data directory)."""
    codec.register()
    app = StreamlearnApp(
        config.id,
        broker=config.broker,
        broker_credentials=faust_credentials(config.settings),
        store=config.store,
        datadir=str(datadir(config)),
        autodiscover=False,  # app/worker.py adds every part, in order
        origin="app",
        Worker=StreamlearnWorker,
        key_serializer="raw",
        value_serializer="orjson",
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        table_standby_replicas=config.standby_replicas,
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=min(3.0, config.session_timeout / 3),
        # (Faust's own: its agents at least once; exactly_once is streamlearn's, per shard)
        processing_guarantee="at_least_once",
        web_port=config.web_port,
        web_bind=config.web_bind,
        web_host=config.web_bind,
        # what other workers are told (Faust's assignor) and forward requests to
        canonical_url=config.web_url_value,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=1000,
        # a checkpoint is one message: a grown tree model easily passes Kafka's 1 MB default
        producer_max_request_size=config.checkpoint_max_bytes + 1024 * 1024,
        stream_buffer_maxsize=8192,
        table_cleanup_interval=min(30.0, config.window_expires),
    )
    if config.exactly_once:  # tables and joins stand only on committed transactions
        compat.read_committed(app)
    return app


def datadir(config: Config) -> Path:
    """The app's data directory: one per app id, as a store holds one changelog offset per
    partition, whatever the topic, so another app id's store would be taken as this app's,
    stale windows and models."""
    return config.datadir / config.id


def settings_warnings(config: Config) -> list[str]:
    """What the settings do that production should not: logged at every worker start
    (:func:`warn_at_start`) and listed in ``GET /stats/`` as ``warnings`` (the dashboard shows
    them): the public checkpoint secret, a web port open beyond loopback without a token, a
    wildcard bind advertised as the URL. Never a secret's value."""
    out = []
    if config.checkpoint_secret == DEV_SECRET:
        out.append(
            "STREAMLEARN_CHECKPOINT_SECRET is not set: model checkpoints are signed with the "
            "public development secret. Set it to a private value in production."
        )
    if not config.web_token and not is_loopback(config.web_bind):
        out.append(
            f"STREAMLEARN_WEB_BIND={config.web_bind} opens the web port beyond this machine "
            "without STREAMLEARN_WEB_TOKEN: whoever reaches it can read the tables and ask for "
            "scores. Set a token, or bind to 127.0.0.1 behind a proxy."
        )
    if not config.web_url and config.web_bind in ("0.0.0.0", "::"):
        out.append(
            f"STREAMLEARN_WEB_URL is not set: other workers are told to reach this one at "
            f"{config.web_url_value}, which is not an address of this machine for them. Set it "
            "to the URL they reach this worker at."
        )
    return out


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "0.0.0.0")]
    [True, True, True, True, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_at_start(app: faust.App, config: Config) -> None:
    """Log :func:`settings_warnings` once the worker runs: logged when the app is built, before
    Faust sets up logging, a warning was lost."""

    @app.task
    async def warn_at_start() -> None:
        for text in settings_warnings(config):
            logging.getLogger(__name__).warning(text)
