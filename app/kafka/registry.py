"""The schema registry: writer schemas fetched by id, once; schemas registered for Avro output.

Reads: the ``schema_registry_*`` settings (the Confluent-compatible API's URL, the basic auth or
its file, the CA file) and, over HTTP(S), the registry's ``/schemas/ids/{id}``,
``/schemas/types`` and ``/subjects/{subject}/versions`` (Confluent's API, which Apicurio serves
under ``/apis/ccompat/v7``). Writes: a schema registered under a subject (:meth:`register`).
Keeps: each schema by id for good (a registry never changes what an id names); for
``not_found_ttl`` seconds, the ids the registry said it does not know (so that a burst of such
messages does not ask it once each); one request per id in flight.

Two kinds of failure, which the caller must tell apart:

* :class:`SchemaNotFound`: the registry answered that it does not know the id (404 with
  Confluent's error code 40403) to a fresh lookup. Permanent: the message is dead-lettered.
* :class:`RegistryUnavailable`: no answer (connection refused, timeout), a 5xx or 429, refused
  credentials, or an answer that is not the API's (a 404 without 40403: a wrong URL). The
  message may be good: reading pauses and retries with backoff (:meth:`load_retrying`), and
  never dead-letters it.

No message of this module (errors, logs) holds the auth's value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from app.contracts.avro import AvroDecoder

log = logging.getLogger(__name__)

#: Confluent's error code for "schema not found" (with HTTP 404)
SCHEMA_NOT_FOUND = 40403
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
#: the first wait after a failed lookup, doubled each time up to the last
BACKOFF = (0.5, 10.0)


class RegistryError(Exception):
    """The schema registry cannot be used; the text says why, never with the auth's value."""


class SchemaNotFound(RegistryError):
    """The registry does not know this schema id: messages written with it are dead-lettered."""

    def __init__(self, schema_id: int, reason: str) -> None:
        super().__init__(reason)
        self.schema_id = schema_id


class RegistryUnavailable(RegistryError):
    """The registry could not answer now: pause, retry with backoff; never dead-letter."""


@dataclass(frozen=True)
class RegistrySchema:
    """A schema as the registry serves it by id."""

    schema_id: int
    #: the schema's text (JSON, for Avro)
    schema: str
    #: ``AVRO``, ``JSON`` or ``PROTOBUF`` (Confluent's registry leaves it out for Avro: None)
    schema_type: str | None = None
    references: tuple = ()


@dataclass(frozen=True)
class Credentials:
    """The registry's basic auth (the password not in the repr).

    >>> Credentials("ml", "s3cret")
    Credentials(user='ml')
    """

    user: str
    password: str = field(repr=False)

    def header(self) -> str:
        """The ``Authorization`` header's value."""
        return aiohttp.encode_basic_auth(self.user, self.password)


def credentials(settings: Any) -> Credentials | None:
    """The basic auth of STREAMLEARN_SCHEMA_REGISTRY_AUTH, else of the first line of
    STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE (None: neither is set).

    >>> from types import SimpleNamespace as S
    >>> credentials(S(schema_registry_auth="ml:s3cret", schema_registry_auth_file=""))
    Credentials(user='ml')
    """
    raw = settings.schema_registry_auth
    where = "STREAMLEARN_SCHEMA_REGISTRY_AUTH"
    if not raw and settings.schema_registry_auth_file:
        where = f"STREAMLEARN_SCHEMA_REGISTRY_AUTH_FILE={settings.schema_registry_auth_file!r}"
        try:
            raw = Path(settings.schema_registry_auth_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise RegistryError(f"{where} cannot be read ({type(exc).__name__})") from None
    if not raw:
        return None
    user, colon, password = raw.partition(":")
    if not user or not colon:
        raise RegistryError(f"{where} must hold user:password (its value is hidden)")
    return Credentials(user, password)


def ssl_context(settings: Any) -> ssl.SSLContext | None:
    """The TLS context of an https registry with STREAMLEARN_SCHEMA_REGISTRY_CAFILE (None: the
    system's trusted CAs, or http)."""
    if not settings.schema_registry_cafile:
        return None
    try:
        return ssl.create_default_context(cafile=settings.schema_registry_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(
            f"STREAMLEARN_SCHEMA_REGISTRY_CAFILE={settings.schema_registry_cafile!r} cannot be "
            f"used: {exc}"
        ) from None


class RegistryClient:
    """One schema registry's Confluent API, asked over one HTTP session.

    ``url`` is the API's root (``http://127.0.0.1:8081/apis/ccompat/v7`` for the local registry
    of scripts/registry.sh). ``request_timeout``: seconds one request may take before it counts
    as unreachable. ``clock`` and ``sleep`` are the monotonic clock and the wait (tests give
    their own).
    """

    def __init__(
        self,
        url: str,
        auth: Credentials | None = None,
        ssl_context: ssl.SSLContext | None = None,
        request_timeout: float = 10.0,
        not_found_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = auth
        self.ssl_context = ssl_context
        self.request_timeout = request_timeout
        self.not_found_ttl = not_found_ttl
        self.clock = clock
        self.sleep = sleep
        #: every schema fetched, by id; every id registered, by (subject, schema)
        self.schemas: dict[int, RegistrySchema] = {}
        self.registered: dict[tuple[str, str], int] = {}
        #: ids the registry does not know: until when that answer is taken without asking
        self.not_found: dict[int, float] = {}
        self.requests = 0
        self._inflight: dict[int, asyncio.Future[RegistrySchema]] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def configured(cls, settings: Any, **options: Any) -> RegistryClient:
        """The client of the settings' registry (a ``RegistryError`` if they cannot be used)."""
        return cls(
            settings.schema_registry_url,
            credentials(settings),
            ssl_context(settings),
            **options,
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _scrub(self, text: str) -> str:
        """``text`` without the auth's password (a registry could echo a header back)."""
        if self.auth is not None:
            for secret in (self.auth.password, self.auth.header().split()[-1]):
                if secret:
                    text = text.replace(secret, "(hidden)")
        return text

    async def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        """One request: (status, JSON body or None, a short text of the body); a
        ``RegistryUnavailable`` when no answer comes."""
        if self._session is None:
            headers = {"Accept": f"{CONTENT_TYPE}, application/json"}
            if self.auth is not None:
                headers["Authorization"] = self.auth.header()
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                connector=aiohttp.TCPConnector(ssl=self.ssl_context or True),
                headers=headers,
            )
        self.requests += 1
        data = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": CONTENT_TYPE}
        try:
            async with self._session.request(
                method, self.url + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            if isinstance(exc, TimeoutError):
                detail = f"no answer within {self.request_timeout:g} s"
            else:
                detail = f"{type(exc).__name__}: {exc}"
            raise RegistryUnavailable(
                self._scrub(f"the schema registry at {self.url} cannot be reached: {detail}")
            ) from None
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        text = self._scrub(raw[:200].decode("utf-8", "replace").strip())
        return status, parsed, text

    def _unavailable(self, what: str, status: int, text: str) -> RegistryUnavailable:
        if status in (401, 403):
            hint = ": check STREAMLEARN_SCHEMA_REGISTRY_AUTH (or _AUTH_FILE)"
        elif status == 404:
            hint = (
                f" without Confluent's error code {SCHEMA_NOT_FOUND}: is "
                "STREAMLEARN_SCHEMA_REGISTRY_URL the registry's Confluent API (Apicurio: "
                "http://host:port/apis/ccompat/v7)?"
            )
        else:
            hint = ""
        return RegistryUnavailable(
            f"the schema registry at {self.url} answers {what} with HTTP {status}{hint} ({text})"
        )

    async def check(self) -> None:
        """Ask the registry whether it serves the Confluent API with Avro; a one-line
        ``RegistryError`` when it cannot be reached or does not (at start-up)."""
        status, body, text = await self._request("GET", "/schemas/types")
        if status == 404:  # (a Confluent registry before 5.5 has no /schemas/types)
            status, body, text = await self._request("GET", "/subjects")
            if status == 200 and isinstance(body, list):
                return
        if status != 200 or not isinstance(body, list):
            raise self._unavailable("GET /schemas/types", status, text)
        if "AVRO" not in body:
            raise RegistryError(f"the schema registry at {self.url} serves no Avro ({body})")

    async def schema(self, schema_id: int) -> RegistrySchema:
        """The schema of ``schema_id``: from the cache, else asked once (concurrent askers of
        the same id share one request). ``SchemaNotFound`` or ``RegistryUnavailable``."""
        found = self.schemas.get(schema_id)
        if found is not None:
            return found
        until = self.not_found.get(schema_id)
        if until is not None:
            if self.clock() < until:
                raise SchemaNotFound(schema_id, self._not_found_reason(schema_id))
            del self.not_found[schema_id]
        pending = self._inflight.get(schema_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(schema_id))
            self._inflight[schema_id] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(schema_id, None))
        return await asyncio.shield(pending)

    def _not_found_reason(self, schema_id: int) -> str:
        return (
            f"schema id {schema_id} is not known to the schema registry at {self.url} "
            f"(HTTP 404, error code {SCHEMA_NOT_FOUND})"
        )

    async def _fetch(self, schema_id: int) -> RegistrySchema:
        status, body, text = await self._request("GET", f"/schemas/ids/{schema_id}")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("schema"), str):
            schema = RegistrySchema(
                schema_id,
                body["schema"],
                body.get("schemaType"),
                tuple(body.get("references") or ()),
            )
            self.schemas[schema_id] = schema
            return schema
        if status == 404 and isinstance(body, dict) and body.get("error_code") == SCHEMA_NOT_FOUND:
            self.not_found[schema_id] = self.clock() + self.not_found_ttl
            raise SchemaNotFound(schema_id, self._not_found_reason(schema_id))
        if status == 200:
            raise RegistryUnavailable(
                f"the schema registry at {self.url} answers GET /schemas/ids/{schema_id} with "
                f"no schema ({text})"
            )
        raise self._unavailable(f"GET /schemas/ids/{schema_id}", status, text)

    async def load(self, decoder: AvroDecoder, values: Iterable[bytes | None]) -> None:
        """Give ``decoder`` the writer schema of every message of ``values`` it lacks, so that
        it decodes them all: an id the registry does not know becomes a refusal with the reason
        (those messages are dead-lettered), asked again after ``not_found_ttl``. Raises
        ``RegistryUnavailable`` (pause, then :meth:`load` again: see :meth:`load_retrying`)."""
        now = self.clock()
        for schema_id, until in list(self.not_found.items()):
            if until <= now and decoder.known(schema_id):
                decoder.forget(schema_id)  # (asked again, fresh, if a message still has it)
        for schema_id in sorted(decoder.missing(values)):
            try:
                found = await self.schema(schema_id)
            except SchemaNotFound as exc:
                decoder.refuse(schema_id, str(exc))
                continue
            decoder.add(schema_id, found.schema, found.schema_type, found.references)

    async def load_retrying(
        self,
        decoder: AvroDecoder,
        values: Iterable[bytes | None],
        timeout: float,
        on_wait: Callable[[RegistryUnavailable, float], Any] | None = None,
    ) -> None:
        """:meth:`load`, retried while the registry is unavailable: waits of 0.5 s doubling up
        to 10 s; ``on_wait(error, seconds)`` before each (default: a warning in the log). After
        ``timeout`` seconds (STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT) the last error is raised, with
        how long it lasted."""
        values = list(values)
        start = self.clock()
        delay = BACKOFF[0]
        while True:
            try:
                return await self.load(decoder, values)
            except RegistryUnavailable as exc:
                waited = self.clock() - start
                if waited >= timeout:
                    raise RegistryUnavailable(
                        f"{exc}; still so after {waited:.0f} s "
                        f"(STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT={timeout:g})"
                    ) from None
                pause = min(delay, max(timeout - waited, 0.0))
                if on_wait is None:
                    log.warning("%s; reading paused, trying again in %.1f s", exc, pause)
                else:
                    on_wait(exc, pause)
                await self.sleep(pause)
                delay = min(delay * 2, BACKOFF[1])

    async def register(self, subject: str, schema: str) -> int:
        """Register an Avro ``schema`` (JSON text) under ``subject`` (e.g.
        ``predictions-value``); its id. The same schema again is the same id (asked once).
        ``RegistryUnavailable`` when unreachable; ``RegistryError`` when refused (an
        incompatible change, bad credentials, an invalid schema)."""
        known = self.registered.get((subject, schema))
        if known is not None:
            return known
        path = f"/subjects/{quote(subject, safe='')}/versions"
        status, body, text = await self._request("POST", path, {"schema": schema})
        if status == 200 and isinstance(body, dict) and isinstance(body.get("id"), int):
            self.registered[(subject, schema)] = body["id"]
            return body["id"]
        if status == 409:
            raise RegistryError(
                f"the schema registry at {self.url} refuses the schema for subject {subject!r}: "
                f"incompatible with its latest version ({text})"
            )
        if status in (400, 422):
            raise RegistryError(
                f"the schema registry at {self.url} refuses the schema for subject {subject!r} "
                f"as invalid (HTTP {status}: {text})"
            )
        raise self._unavailable(f"POST {path}", status, text)


def needed(settings: Any) -> bool:
    """Whether the settings read or write Avro: the worker then needs the registry.

    >>> from types import SimpleNamespace as S
    >>> needed(S(events_format="avro", labels_format="json", predictions_format="json"))
    True
    >>> needed(S(events_format="json", labels_format="json", predictions_format="json"))
    False
    """
    formats = (settings.events_format, settings.labels_format, settings.predictions_format)
    return "avro" in formats


def check_at_start(settings: Any, **options: Any) -> None:
    """Whether the settings' registry answers and serves Avro (before the worker starts: a
    ``RegistryError`` with one line when it cannot be used). The check runs in a thread of its
    own, with its own event loop and session (the caller may be about to run a loop, or be in
    one)."""

    async def check() -> None:
        async with RegistryClient.configured(settings, **options) as probe:
            await probe.check()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, check()).result()


def register_at_start(settings: Any, schemas: dict[str, str], **options: Any) -> dict[str, int]:
    """Register each Avro schema of ``schemas`` (subject -> JSON text) and give their ids, by
    subject (at start-up, in a thread of its own as :func:`check_at_start`): the same schema
    again is the same id; a registry that refuses one, or cannot be reached, is a one-line
    ``RegistryError`` naming the subject."""

    async def register() -> dict[str, int]:
        async with RegistryClient.configured(settings, **options) as client:
            return {
                subject: await client.register(subject, text) for subject, text in schemas.items()
            }

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, register()).result()
