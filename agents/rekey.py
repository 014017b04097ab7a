"""The re-key stage (``STREAMLEARN_REKEY=1``): events keyed by entity, whatever their producer did.

Reads: the raw events topic (any partition count, any Kafka keys), as bytes.
Writes: each message unchanged to ``<id>-rekeyed`` (``STREAMLEARN_PARTITIONS`` partitions),
keyed and so partitioned by its ``key`` field, or its ``id`` when it has no key, with its origin
in the ``sl-src`` header (``b"<raw partition>:<offset>"``). A message that is not an event is
passed on too (keyed by its Kafka key, else its origin): the engine dead-letters it with the
reason and its origin, in one place.
Keeps: nothing. A message is acknowledged to Faust only once Kafka has acknowledged its copy, so
every event reaches ``<id>-rekeyed`` at least once; the copies a crash makes it send again carry
an origin offset the shard has taken already, and the engine drops them (``agents/engine.py``).
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from app.faust_app import app
from app.settings import settings
from app.topics import declare, events, rekeyed

log = logging.getLogger(__name__)

#: Copies sent before their deliveries are waited for and their events acknowledged.
CONFIRM_EVERY = 2000
#: ... or after this many seconds, whichever comes first.
CONFIRM_SECONDS = 0.1


def routing_key(raw: bytes | None, kafka_key: bytes | None, origin: bytes) -> bytes:
    """The key an event is re-keyed by: its ``key`` field, else its ``id``; a message that is
    not a JSON object with either keeps its Kafka key, else gets its origin.

    >>> routing_key(b'{"id": "e1", "key": "card-1"}', None, b"0:5")
    b'card-1'
    >>> routing_key(b'{"id": "e1", "key": null}', b"k", b"0:5")
    b'e1'
    >>> routing_key(b"not json", None, b"0:5"), routing_key(b"[1]", b"k", b"0:5")
    (b'0:5', b'k')
    """
    try:
        value = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        for field in ("key", "id"):
            chosen = value.get(field)
            if isinstance(chosen, str) and chosen:
                return chosen.encode()
    return kafka_key if kafka_key is not None else origin


class Confirmer:
    """Events whose copies were sent, acknowledged in order once Kafka has every copy."""

    def __init__(self) -> None:
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.lock = asyncio.Lock()

    def add(self, event, sent: asyncio.Future) -> None:
        self.pending.append((event, sent))

    async def confirm(self) -> None:
        """Wait for the deliveries of what is pending, then acknowledge those events.

        A delivery that failed stops the worker without acknowledging anything of it: Faust's
        commit stays before it, and the next start sends it again.
        """
        async with self.lock:
            pending, self.pending = self.pending, []
            if not pending:
                return
            await asyncio.wait([sent for _, sent in pending])
            for _, sent in pending:
                if sent.cancelled() or sent.exception() is not None:
                    error = sent.exception() if not sent.cancelled() else "cancelled"
                    log.critical("re-key: Kafka did not take a copy (%s): stopping", error)
                    await app.crash(RuntimeError(f"re-key: a copy was not delivered: {error}"))
                    await asyncio.Event().wait()  # stopped by the crash, never acknowledged
            for event, _ in pending:
                event.ack()


async def rekey_events(stream) -> None:
    await declare(rekeyed)
    confirmer = Confirmer()

    async def confirm_periodically() -> None:
        while True:
            await asyncio.sleep(CONFIRM_SECONDS)
            await confirmer.confirm()

    confirming = asyncio.ensure_future(confirm_periodically())
    try:
        async for event in stream.noack().events():
            message = event.message
            origin = f"{message.partition}:{message.offset}".encode()
            key = routing_key(message.value, message.key, origin)
            sent = await rekeyed.send(key=key, value=message.value, headers=[("sl-src", origin)])
            confirmer.add(event, sent)
            if len(confirmer.pending) >= CONFIRM_EVERY:
                await confirmer.confirm()
    finally:
        confirming.cancel()


if settings.rekey:
    rekey_events = app.agent(events, name="rekey")(rekey_events)
