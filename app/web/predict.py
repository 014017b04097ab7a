"""``POST /predict/``: a score on request, from the shard that owns the key.

Reads: the request's body (one event in the events contract, or the ``[events]`` mapping's
shape; or a JSON array of them, at most STREAMLEARN_PREDICT_MAX), checked as the engine checks
an event (``app/contracts/intake.py``; ``ts`` defaults to now). Gives, per event and in the
request's order: ``id``, ``key``, ``model``, ``role``, ``version``, ``y_pred``, ``proba``,
``features`` (the row the model saw) and ``worker`` (the worker that computed it); with
``?all=1`` also ``challengers``. Each is the champion of the event's shard on the key's
windowed features as the stream would compute them for that event now; nothing is stored
(:class:`Scorer`, ``agents/shards.py``). Events of shards held elsewhere are forwarded as the
request held them, in one request per worker, to the worker that holds them (which checks them
again, with the same mapping and transform), at the URL it advertises (STREAMLEARN_WEB_URL) and
with the web token when one is set (``app/web/auth.py``), through one HTTP client session per
worker (:class:`Forwarder`, a service closed when the worker stops). Keeps nothing else.

Errors: ``400`` with ``{"error": reason, "index": i}`` for a body that cannot be read or an
event that would be refused (the first one; the reason names the field), or that a model fails
on; ``503`` with ``Retry-After`` while a shard has no
known owner, during a rebalance, or when its owner cannot be reached: never a stale answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from mode import Service

from app.contracts.intake import Intake
from app.contracts.mapping import Origin
from app.web import auth

#: the header a forwarded request carries (a worker that does not hold its shards says 503)
FORWARDED = "X-Streamlearn-Forwarded"
#: the header naming the workers that computed the answers
WORKER = "X-Streamlearn-Worker"
#: seconds a client should wait before asking again after a 503
RETRY_AFTER = 1
#: seconds a forwarded request may take
FORWARD_TIMEOUT = 10.0
#: why a forwarded request was refused with 401 (after the worker's URL)
TOKEN_REFUSED = "refused the web token: set the same STREAMLEARN_WEB_TOKEN on every worker"


class Scorer(Protocol):
    """What the endpoint needs of the worker (``agents.shards.Scorer``)."""

    def shard_of(self, event: dict) -> int: ...

    def ready(self, shard: int) -> bool: ...

    def owner(self, shard: int) -> str | None: ...

    def score(self, event: dict, all_models: bool) -> dict: ...


class Refused(Exception):
    """The request cannot be answered: an HTTP status and a JSON body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def read_events(
    body: bytes, intake: Intake, now: float, most: int, most_bytes: int
) -> tuple[list[dict], list[dict], bool]:
    """The checked events of a request's ``body``, the request's items they come from (what a
    forwarded request carries: the owner checks them again, with the same mapping and
    transform), and whether the body held an array; a :class:`Refused` (400) naming what is
    wrong and where.

    Without a mapping, an event without ``ts`` gets ``now``; with one, the mapping reads the
    time (its ``time`` field, required when it names one; else ``now``, as a Kafka timestamp).

    >>> intake = Intake(None, None, 3600.0, lambda y: None)
    >>> events, items, many = read_events(b'{"id": "a", "key": "k", "x": {}}', intake, 9.0, 10, 99)
    >>> events[0]["ts"], items[0]["ts"], many
    (9.0, 9.0, False)
    >>> read_events(b'[1]', intake, 9.0, 10, 99)
    Traceback (most recent call last):
    app.web.predict.Refused: event 0: not a JSON object
    >>> read_events(b'{"id": "a", "ts": "now", "x": {}}', intake, 9.0, 10, 99)
    Traceback (most recent call last):
    app.web.predict.Refused: event 0: ts must be a number, got str
    """
    if len(body) > most_bytes:
        raise Refused(400, {"error": f"the body is over {most_bytes} bytes"})
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, {"error": f"not JSON: {exc}"}) from None
    many = isinstance(value, list)
    items = value if many else [value]
    if not items:
        raise Refused(400, {"error": "no event in the array"})
    if len(items) > most:
        raise Refused(400, {"error": f"{len(items)} events: at most {most} per request"})
    origin = Origin("predict", -1, -1, None, int(now * 1000))
    events, sent = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise Refused(400, {"error": f"event {index}: not a JSON object", "index": index})
        if intake.mapping is None and "ts" not in item:
            item = {**item, "ts": now}  # (the default: now)
        event = intake.event_of(item, origin, now)
        if type(event) is tuple:
            reason = event[1] or "dropped by the transform"
            raise Refused(400, {"error": f"event {index}: {reason}", "index": index})
        events.append(event)
        sent.append(item)
    return events, sent, many


async def read_body(content: Any, most_bytes: int) -> bytes:
    """The request's body, or its first ``most_bytes + 1`` bytes when it is longer (enough to
    refuse it). One ``read(n)`` gives what has arrived so far, not ``n`` bytes: read to the end.
    """
    chunks, size = [], 0
    while size <= most_bytes:
        chunk = await content.read(most_bytes + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Forwarder(Service):
    """Sends events of shards held elsewhere to their owners: one HTTP client session for the
    worker, opened at the first forward and closed when the worker stops; each request has its
    own timeout (FORWARD_TIMEOUT)."""

    def __init__(self, headers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: what every forwarded request carries: the forwarded mark, the token if any
        self.headers = headers
        self.session: aiohttp.ClientSession | None = None
        self.closed = False

    async def on_stop(self) -> None:
        self.closed = True
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def forward(self, url: str, items: list[dict], all_models: bool) -> list[dict]:
        """The answers of the worker at ``url`` for ``items`` (the request's own items); a
        :class:`Refused`: 400 with the owner's reason (its ``index`` into ``items``), else 503.
        """
        if self.closed:
            raise Refused(503, {"error": "this worker is stopping"})
        if self.session is None:
            self.session = aiohttp.ClientSession()
        params = {"all": "1"} if all_models else {}
        try:
            async with self.session.post(
                f"{url}/predict/",
                data=orjson.dumps(items),
                params=params,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT),
            ) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Refused(503, {"error": f"{url} cannot be reached: {exc!r}"}) from None
        try:
            reply = orjson.loads(payload)
        except orjson.JSONDecodeError:
            reply = None
        if status == 401:  # (a worker started with another token, or none)
            raise Refused(503, {"error": f"{url} {TOKEN_REFUSED}"})
        if status == 400 and type(reply) is dict and type(reply.get("index")) is int:
            raise Refused(400, reply)  # (an event this worker took but its owner refuses)
        if status != 200 or type(reply) is not list or len(reply) != len(items):
            raise Refused(503, {"error": f"{url} answered {status}"})
        return reply


def install(
    app: faust.App, scorer: Scorer, intake: Intake, most: int, most_bytes: int, token: str = ""
) -> Callable:
    """Add ``POST /predict/`` to ``app``'s web view, and the service that forwards requests to
    other workers; returns the function that answers a list of events (for the tests). A
    request forwarded to another worker carries ``token`` (STREAMLEARN_WEB_TOKEN, which every
    worker of the app shares) as a bearer token."""
    me = str(app.conf.canonical_url).rstrip("/")
    forwarder = Forwarder({FORWARDED: "1", **auth.headers(token)})
    app.service(forwarder)

    async def answer(
        events: list[dict], items: list[dict], all_models: bool, forwarded: bool
    ) -> list[dict]:
        by_owner: dict[str, list[int]] = {}
        out: list[Any] = [None] * len(events)
        for index, event in enumerate(events):
            shard = scorer.shard_of(event)
            if scorer.ready(shard):
                try:
                    out[index] = {**scorer.score(event, all_models), "worker": me}
                except Exception as exc:  # as the stream: a model that cannot take the event
                    reason = f"event {index}: a model failed: {type(exc).__name__}: {exc}"
                    raise Refused(400, {"error": reason, "index": index}) from None
                continue
            owner = None if forwarded else scorer.owner(shard)
            if owner is None or owner == me:
                raise Refused(
                    503,
                    {"error": f"shard {shard} is not served now (rebalancing, or starting)"},
                )
            by_owner.setdefault(owner, []).append(index)
        if by_owner:
            replies = await asyncio.gather(
                *(
                    forwarded_to(url, idx, [items[i] for i in idx], all_models)
                    for url, idx in by_owner.items()
                )
            )
            for idx, reply in zip(by_owner.values(), replies, strict=True):
                for i, one in zip(idx, reply, strict=True):
                    out[i] = one
        return out

    async def forwarded_to(
        url: str, idx: list[int], items: list[dict], all_models: bool
    ) -> list[dict]:
        try:
            return await forwarder.forward(url, items, all_models)
        except Refused as exc:
            if exc.status == 400:  # the owner's index is into what it was sent
                index = idx[exc.body["index"]]
                reason = str(exc.body.get("error", "")).split(": ", 1)[-1]
                raise Refused(400, {"error": f"event {index}: {reason}", "index": index}) from None
            raise

    class Predict(View):
        async def post(self, request: Request) -> Response:
            try:
                body = await read_body(request.content, most_bytes)
                events, items, many = read_events(body, intake, time.time(), most, most_bytes)
                all_models = request.query.get("all") in ("1", "true")
                forwarded = request.headers.get(FORWARDED) == "1"
                answers = await answer(events, items, all_models, forwarded)
            except Refused as exc:
                headers = {"Retry-After": str(RETRY_AFTER)} if exc.status == 503 else {}
                return self.bytes(
                    orjson.dumps(exc.body),
                    content_type="application/json",
                    status=exc.status,
                    headers=headers,
                )
            workers = sorted({a["worker"] for a in answers})
            data = answers if many else answers[0]
            return self.bytes(
                orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
                content_type="application/json",
                headers={WORKER: ", ".join(workers)},
            )

    app.page("/predict/")(Predict)
    return answer
