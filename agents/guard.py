"""Stop the worker, with the reason, when Kafka refuses what the worker cannot do without.

Watches: every message Faust's own producer sends for the worker (table changelogs, the label
join's and the learner's topics), through a Faust sensor, and the errors Faust's consumer logs.
Does: a send Kafka refused (after the producer's retries), or an authorization error on the
group or a topic, stops the worker with one critical line naming the topic or group. Faust itself
would log the send error and go on (a lost changelog write is state a crash would lose:
"FutureMessage exception was never retrieved"), or log the authorization error once and wait for
ever, never ready.
Keeps: whether it has stopped the worker already (one stop, one reason).
"""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)
from faust.sensors import Sensor

from app.config import Config
from app.faust_app import StartRefused
from app.kafka.auth import preflight

log = logging.getLogger(__name__)

AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


class Refused(RuntimeError):
    """Kafka refused a write or an access the worker needs."""


class Guard(Sensor):
    """Turns refused writes and refused access into a stop with the reason."""

    stopping = False

    def __init__(self, app: faust.App, config: Config, **kwargs) -> None:
        self.app = app
        self.config = config
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        # sensors start first: before Faust's clients, whose own error would be "Unable to
        # bootstrap" with the reason in a debug log
        config = self.config
        groups = [config.id, *([f"{config.id}-rekey"] if config.rekey else [])]
        problem = await preflight(config.settings, groups)
        if problem is not None:
            raise StartRefused(problem)  # one line on stderr, exit status 2 (app/faust_app.py)
        # now: the worker has set up logging (which replaces the root logger's handlers)
        logging.getLogger().addHandler(AuthorizationLog(self))

    def on_send_initiated(self, producer, topic, message, keysize, valsize) -> str:
        return topic

    def on_send_error(self, producer, exc: BaseException, state) -> None:
        self.stop_worker(
            f"Kafka refused a write to topic {state!r} ({type(exc).__name__}: {exc}); "
            + explain(exc, f"topic {state!r}")
        )

    def stop_worker(self, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.critical("%s", reason)
        asyncio.ensure_future(self.app.crash(Refused(reason)))


def explain(exc: BaseException, resource: str) -> str:
    """What to do about ``exc`` on ``resource``, in a sentence."""
    if isinstance(exc, AUTHORIZATION_ERRORS):
        return (
            f"the principal lacks an ACL on {resource}: grant what docs/secured-cluster.md lists. "
            "Stopping: state that cannot be written is lost in a crash"
        )
    return "stopping: state that cannot be written is lost in a crash"


class AuthorizationLog(logging.Handler):
    """Faust's consumer logs an authorization error of the group coordinator and waits for ever:
    a record carrying one stops the worker instead."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(logging.ERROR)
        self.guard = guard

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        text = record.getMessage() if exc is None else f"{record.getMessage()} {exc!r}"
        if isinstance(exc, AUTHORIZATION_ERRORS) or "AuthorizationFailed" in text:
            self.guard.stop_worker(
                f"Kafka refused access: {text.strip()[:500]}. The principal lacks an ACL "
                f"(the group {self.guard.app.conf.id!r}, or a topic it reads or writes): grant "
                "what docs/secured-cluster.md lists"
            )
