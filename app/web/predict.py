"""``POST /predict/``: a score on request, from the shard that owns the key.

Reads: the request's body (one event in the events contract, or the ``[events]`` mapping's
shape; or a JSON array of them, at most STREAMLEARN_PREDICT_MAX), checked as the engine checks
an event (``app/contracts/intake.py``; ``ts`` defaults to now). Gives, per event and in the
request's order: ``id``, ``key``, ``model``, ``role``, ``version``, ``y_pred``, ``proba``,
``features`` (the row the model saw) and ``worker`` (the worker that computed it); with
``?all=1`` also ``challengers``. Each is the champion of the event's shard on the key's
windowed features as the stream would compute them for that event now; nothing is stored
(:class:`Scorer`, ``agents/shards.py``). Events of shards held elsewhere are forwarded, in one
request per worker, to the worker that holds them, at the URL it advertises
(STREAMLEARN_WEB_URL) and with the web token when one is set (``app/web/auth.py``). Keeps
nothing.

Errors: ``400`` with ``{"error": reason, "index": i}`` for a body that cannot be read or an
event that would be refused (the first one); ``503`` with ``Retry-After`` while a shard has no
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
) -> tuple[list[dict], bool]:
    """The checked events of a request's ``body``, and whether it held an array; a
    :class:`Refused` (400) naming what is wrong and where.

    >>> intake = Intake(None, None, 3600.0, lambda y: None)
    >>> events, many = read_events(b'{"id": "a", "key": "k", "x": {"v": 1}}', intake, 9.0, 10, 99)
    >>> events[0]["ts"], many
    (9.0, False)
    >>> read_events(b'[1]', intake, 9.0, 10, 99)
    Traceback (most recent call last):
    app.web.predict.Refused: event 0: not a JSON object
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
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise Refused(400, {"error": f"event {index}: not a JSON object", "index": index})
        if "ts" not in item:
            item = {**item, "ts": now}  # (the default: now)
        origin = Origin("predict", -1, -1, None, int(now * 1000))
        event = intake.event(orjson.dumps(item), origin, now)
        if type(event) is tuple:
            reason = event[1] or "dropped by the transform"
            raise Refused(400, {"error": f"event {index}: {reason}", "index": index})
        events.append(event)
    return events, many


def install(
    app: faust.App, scorer: Scorer, intake: Intake, most: int, most_bytes: int, token: str = ""
) -> Callable:
    """Add ``POST /predict/`` to ``app``'s web view; returns the function that answers a list
    of events (for the tests). A request forwarded to another worker carries ``token``
    (STREAMLEARN_WEB_TOKEN, which every worker of the app shares) as a bearer token."""
    me = str(app.conf.canonical_url).rstrip("/")
    forward_headers = {FORWARDED: "1", **auth.headers(token)}

    async def answer(events: list[dict], all_models: bool, forwarded: bool) -> list[dict]:
        by_owner: dict[str, list[int]] = {}
        out: list[Any] = [None] * len(events)
        for index, event in enumerate(events):
            shard = scorer.shard_of(event)
            if scorer.ready(shard):
                out[index] = {**scorer.score(event, all_models), "worker": me}
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
                    forward(url, [events[i] for i in idx], all_models)
                    for url, idx in by_owner.items()
                )
            )
            for idx, reply in zip(by_owner.values(), replies, strict=True):
                for i, one in zip(idx, reply, strict=True):
                    out[i] = one
        return out

    async def forward(url: str, events: list[dict], all_models: bool) -> list[dict]:
        body = orjson.dumps(events)
        params = {"all": "1"} if all_models else {}
        try:
            timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(
                    f"{url}/predict/", data=body, params=params, headers=forward_headers
                ) as response:
                    payload = await response.read()
                    if response.status == 401:  # (a worker started with another token, or none)
                        raise Refused(503, {"error": f"{url} {TOKEN_REFUSED}"})
                    if response.status != 200:
                        raise Refused(503, {"error": f"{url} answered {response.status}"})
                    return orjson.loads(payload)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Refused(503, {"error": f"{url} cannot be reached: {exc!r}"}) from None

    class Predict(View):
        async def post(self, request: Request) -> Response:
            try:
                body = await request.content.read(most_bytes + 1)
                events, many = read_events(body, intake, time.time(), most, most_bytes)
                all_models = request.query.get("all") in ("1", "true")
                forwarded = request.headers.get(FORWARDED) == "1"
                answers = await answer(events, all_models, forwarded)
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
