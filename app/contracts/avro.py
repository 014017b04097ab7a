"""Avro in Confluent's wire format, decoded into the dict a mapping's dotted paths apply to (pure).

Reads: a message's value in Confluent's wire format (a magic byte 0, the writer schema's id as 4
bytes big-endian, then the Avro binary of one datum), and writer schemas as a schema registry
serves them by id (``app/kafka/registry.py`` fetches them; this module makes no request).
Gives: the decoded record as JSON would have given it, so that ``app/contracts/mapping.py`` reads
it exactly as a JSON message; a message it cannot read raises ``Malformed`` with the reason; a
schema id it has not been given raises :class:`UnknownSchema` (the caller fetches the schema and
:meth:`AvroDecoder.add` s it, or dead-letters the message if the registry does not know the id).
Keeps: each writer schema, parsed once (fastavro's ``parse_schema``) with a plan of the fields to
convert, by id; and the reason of each schema that cannot be used, so that it is not fetched again.

Avro types become, in the decoded record:

* records and maps: dicts (the mapping's dotted paths go into both); arrays: lists;
* a union with null: the value, or None, which the mapping takes as an absent feature (the key is
  kept, so that a null in a field the mapping lists under ``features`` is an absent feature, not a
  missing field);
* enums: their symbol (a string);
* ``timestamp-millis`` / ``timestamp-micros``: epoch seconds as a float, as the events
  contract's ``ts`` (exactly ``millis / 1000.0`` and ``micros / 1e6``: what
  ``time_format = "epoch_ms"`` makes of the same number in JSON); ``local-timestamp-*`` (no
  zone) are taken as UTC;
* ``decimal`` (bytes or fixed): a float (the nearest to the decimal); ``uuid``: its string;
  ``date``: ``"YYYY-MM-DD"``; ``time-millis`` / ``time-micros``: ``"HH:MM:SS[.ffffff]"``;
* ``bytes`` and ``fixed``: :data:`BYTES` / :data:`FIXED`, markers that a mapping refuses to take
  as a feature when it names them, and skips when it takes every field.

Cost, measured with ``bench/avro_decode.py`` on this 2-core machine (2026-12-06, load ~1.7, best
of 7 passes over 20,000 rows of the fraud stream as a flat record: id, card, a
``timestamp-millis``, amount, an enum, hour, online, a nullable label; 49 bytes of Avro against 134
of JSON): :meth:`AvroDecoder.decode` 3.25 us a message, ``orjson.loads`` of the same row as JSON
0.56 us, so Avro costs +2.7 us a message: 8 % of the 33 us a worker spends on a row at 30k
events/s, 11 % at 42k (the issue's bound: 15 % of the JSON row's rate). Nearly all of it is
fastavro's own reader (3.0 us for this record with nothing to convert). Timestamps are read as
plain longs and divided (:data:`_PLAIN_TIMESTAMPS`): converted back from fastavro's datetimes,
the same row took 4.4 us.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

from app.contracts.records import Malformed

#: Confluent's wire format: the magic byte, then a 4-byte schema id
MAGIC = 0
HEADER = 5
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class Opaque:
    """A bytes or fixed value: something a model cannot take as a feature.

    >>> BYTES, FIXED
    (<Avro bytes>, <Avro fixed>)
    """

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<Avro {self.kind}>"


BYTES = Opaque("bytes")
FIXED = Opaque("fixed")


class UnknownSchema(LookupError):
    """The decoder has not been given the writer schema of this id: fetch it, then ``add`` it."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema id {schema_id} is not known yet")
        self.schema_id = schema_id


def wire_id(raw: bytes | None) -> int:
    """The writer schema's id of a message in Confluent's wire format; ``Malformed`` says why a
    message is not in it.

    >>> wire_id(b"\\x00\\x00\\x00\\x01\\x07\\x02")
    263
    >>> wire_id(b"\\x00\\x00\\x01")
    Traceback (most recent call last):
    app.contracts.records.Malformed: not in Confluent's Avro wire format: 3 bytes, shorter than its 5-byte header (magic byte 0, 4-byte schema id)
    >>> wire_id(b'{"id": "e1"}')
    Traceback (most recent call last):
    app.contracts.records.Malformed: not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 (it looks like JSON)
    """  # noqa: E501
    if raw is None:
        raise Malformed("empty message (no value)")
    if len(raw) < HEADER:
        raise Malformed(
            f"not in Confluent's Avro wire format: {len(raw)} bytes, shorter than its 5-byte "
            "header (magic byte 0, 4-byte schema id)"
        )
    first = raw[0]
    if first != MAGIC:
        hint = " (it looks like JSON)" if first in b"{[" else ""
        raise Malformed(
            f"not in Confluent's Avro wire format: the first byte is 0x{first:02x}, not the magic "
            f"byte 0{hint}"
        )
    return int.from_bytes(raw[1:HEADER], "big")


# -- conversion: what fastavro gives -> what JSON would have given -----------------------------

Convert = Callable[[Any], Any]


def _seconds(value: dt.datetime) -> float:
    """Epoch seconds of a timestamp, exactly ``micros / 1e6`` (``millis / 1000.0`` for millis).

    >>> _seconds(dt.datetime(2026, 3, 1, 8, 15, 2, 123000, tzinfo=dt.UTC)) == 1772352902123 / 1000
    True
    """
    if value.tzinfo is None:  # local-timestamp-*: no zone; taken as UTC
        value = value.replace(tzinfo=dt.UTC)
    return ((value - _EPOCH) // _MICROSECOND) / 1e6


def _generic(value: Any, opaque: Opaque = BYTES) -> Any:
    """Any decoded value converted by its Python type (for unions, whose branch is known only
    from the value)."""
    kind = type(value)
    if kind is dict:
        return {k: _generic(v, opaque) for k, v in value.items()}
    if kind is list:
        return [_generic(v, opaque) for v in value]
    if kind is dt.datetime:
        return _seconds(value)
    if kind is decimal.Decimal:
        return float(value)
    if kind is bytes:
        return opaque
    if kind is dt.date or kind is dt.time:
        return value.isoformat()
    if kind is uuid.UUID:
        return str(value)
    return value


#: fastavro's logical readers (``fastavro.read.LOGICAL_READERS``), by ``<type>-<logicalType>``:
#: what converts their values (a logical type on another base type is read as its base type)
_LOGICAL: dict[str, Convert] = {
    "long-timestamp-millis": _seconds,
    "long-timestamp-micros": _seconds,
    "long-local-timestamp-millis": _seconds,
    "long-local-timestamp-micros": _seconds,
    "bytes-decimal": float,
    "fixed-decimal": float,
    "string-uuid": str,
    "int-date": dt.date.isoformat,
    "int-time-millis": dt.time.isoformat,
    "long-time-micros": dt.time.isoformat,
}
#: timestamps read as their plain long instead (the logical type taken off the schema fastavro
#: reads: no datetime made and taken apart again, a third of the cost of decoding a row), and
#: converted from it: the same float as :func:`_seconds` of fastavro's datetime
_PLAIN_TIMESTAMPS: dict[str, Convert] = {
    "long-timestamp-millis": lambda v: v / 1000.0,
    "long-timestamp-micros": lambda v: v / 1e6,
    "long-local-timestamp-millis": lambda v: v / 1000.0,
    "long-local-timestamp-micros": lambda v: v / 1e6,
}


def _to_bytes(_value: bytes) -> Opaque:
    return BYTES


def _to_fixed(_value: bytes) -> Opaque:
    return FIXED


class _Replan(Exception):
    """Taking the logical types off timestamps would be wrong somewhere in this schema."""


class _Planner:
    """Compiles a writer schema into the schema fastavro reads (timestamps as plain longs, where
    that is safe) and one function that converts a decoded datum, or None when nothing in it
    needs converting (the record fastavro gives is then used as it is)."""

    def __init__(self, plain_timestamps: bool) -> None:
        self.plain_timestamps = plain_timestamps
        #: named types by full name: their converters (None: nothing to convert)
        self.plans: dict[str, Convert | None] = {}
        self.visiting: set[str] = set()

    def plan(self, schema: Any, namespace: str = "") -> tuple[Any, Convert | None]:
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if isinstance(schema, str):
            name = self._resolve(schema, namespace)
            if name is None:
                return schema, (_to_bytes if schema == "bytes" else None)
            if name in self.visiting:  # a recursive type: converted by its values
                if self.plain_timestamps:
                    raise _Replan
                return schema, _generic
            return schema, self.plans[name]
        kind = schema.get("type")
        if not isinstance(kind, str):  # {"type": {...}} or {"type": [...]}
            return self.plan(kind, namespace)
        key = f"{kind}-{schema.get('logicalType')}"
        if self.plain_timestamps and key in _PLAIN_TIMESTAMPS:
            return kind, _PLAIN_TIMESTAMPS[key]
        if key in _LOGICAL:
            if kind == "fixed":
                self.plans[self._name(schema, namespace)[0]] = _LOGICAL[key]
            return schema, _LOGICAL[key]
        if kind in ("record", "error"):
            name, inner = self._name(schema, namespace)
            self.visiting.add(name)
            fields, todo = [], []
            for f in schema["fields"]:
                read, convert = self.plan(f["type"], inner)
                fields.append(f if read is f["type"] else {**f, "type": read})
                if convert is not None:
                    todo.append((f["name"], convert))
            self.visiting.discard(name)
            self.plans[name] = _record(tuple(todo)) if todo else None
            return {**schema, "fields": fields}, self.plans[name]
        if kind == "enum":
            self.plans[self._name(schema, namespace)[0]] = None
            return schema, None
        if kind == "fixed":
            self.plans[self._name(schema, namespace)[0]] = _to_fixed
            return schema, _to_fixed
        if kind == "array":
            read, item = self.plan(schema["items"], namespace)
            convert = None if item is None else (lambda v: [item(i) for i in v])
            return {**schema, "items": read}, convert
        if kind == "map":
            read, each = self.plan(schema["values"], namespace)
            convert = None if each is None else (lambda v: {k: each(i) for k, i in v.items()})
            return {**schema, "values": read}, convert
        return self.plan(kind, namespace)  # {"type": "long"} and the like

    def _name(self, schema: dict, namespace: str) -> tuple[str, str]:
        """A named type's full name, and the namespace it gives the types inside it."""
        name = schema["name"]
        if "." not in name:
            ns = schema.get("namespace", namespace)
            name = f"{ns}.{name}" if ns else name
        return name, name.rpartition(".")[0]

    def _resolve(self, name: str, namespace: str) -> str | None:
        """The full name a type name refers to (the enclosing namespace first), if defined."""
        known = self.plans.keys() | self.visiting
        if "." not in name and namespace and f"{namespace}.{name}" in known:
            return f"{namespace}.{name}"
        return name if name in known else None

    def _union(self, branches: list, namespace: str) -> tuple[list, Convert | None]:
        planned = [self.plan(b, namespace) for b in branches]
        read = [r for r, _ in planned]
        converts = [c for b, (_, c) in zip(branches, planned, strict=True) if b != "null"]
        if all(c is None for c in converts):
            return read, None
        if len(converts) == 1:  # ["null", X]: the common union, converted as X
            (only,) = converts
            return read, (lambda v: None if v is None else only(v))
        # several branches, one to convert: which one is known from the value only; a
        # timestamp read as a plain long would not be recognised as one
        if self.plain_timestamps:
            raise _Replan
        fixed = [c is _to_fixed for c in converts]
        opaque = FIXED if any(fixed) and not any(c is _to_bytes for c in converts) else BYTES
        return read, (lambda v: _generic(v, opaque))


def _record(todo: tuple[tuple[str, Convert], ...]) -> Convert:
    def convert(record: dict) -> dict:
        for name, each in todo:
            record[name] = each(record[name])
        return record

    return convert


def plan(schema: Any) -> tuple[Any, Convert | None]:
    """The schema fastavro should read a writer schema as, and what converts its datum.

    >>> read, convert = plan({"type": "record", "name": "E", "fields": [
    ...     {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ...     {"name": "n", "type": "int"}]})
    >>> read["fields"][0], convert({"at": 1772352902123, "n": 3})
    ({'name': 'at', 'type': 'long'}, {'at': 1772352902.123, 'n': 3})
    """
    try:
        return _Planner(plain_timestamps=True).plan(schema)
    except _Replan:
        return _Planner(plain_timestamps=False).plan(schema)


class WriterSchema:
    """One writer schema, parsed once: what decodes a message written with it."""

    __slots__ = ("schema_id", "parsed", "convert")

    def __init__(self, schema_id: int, schema: Any) -> None:
        self.schema_id = schema_id
        parse_schema(schema)  # (the schema as written must be valid Avro)
        read, self.convert = plan(schema)
        self.parsed = parse_schema(read)

    def decode(self, raw: bytes) -> dict:
        """The record of ``raw`` (a whole message, header included)."""
        try:
            value = schemaless_reader(io.BytesIO(raw[HEADER:]), self.parsed, None)
        except Exception as exc:  # (fastavro raises EOFError, ValueError, IndexError, ...)
            raise Malformed(
                f"not Avro of schema id {self.schema_id}: {type(exc).__name__}: {exc}"
            ) from None
        if type(value) is not dict:
            raise Malformed(
                f"schema id {self.schema_id} is not a record: its message decodes to "
                f"{type(value).__name__}"
            )
        if self.convert is None:
            return value
        try:
            return self.convert(value)
        except (ValueError, TypeError, OverflowError) as exc:  # (a value out of any range)
            raise Malformed(
                f"a value of schema id {self.schema_id} cannot be converted: "
                f"{type(exc).__name__}: {exc}"
            ) from None


class AvroDecoder:
    """Messages in Confluent's wire format, decoded with their writer schemas (given by id).

    >>> decoder = AvroDecoder()
    >>> decoder.add(7, '{"type": "record", "name": "P", "fields": [{"name": "amount", '
    ...     '"type": ["null", "double"]}, {"name": "kind", "type": {"type": "enum", '
    ...     '"name": "K", "symbols": ["A", "B"]}}]}')
    >>> decoder.decode(b"\\x00\\x00\\x00\\x00\\x07\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x0c@\\x02")
    {'amount': 3.5, 'kind': 'B'}
    >>> decoder.decode(b"\\x00\\x00\\x00\\x00\\x08\\x00")
    Traceback (most recent call last):
    app.contracts.avro.UnknownSchema: schema id 8 is not known yet
    """

    def __init__(self) -> None:
        #: by schema id: the parsed schema, or why it cannot be used (a refusal, kept)
        self.schemas: dict[int, WriterSchema | str] = {}

    def known(self, schema_id: int) -> bool:
        """Whether the schema of this id was given (usable or not)."""
        return schema_id in self.schemas

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids of these messages not given yet (messages not in the wire format are
        left to :meth:`decode` to refuse): what to fetch before decoding a batch."""
        ids = set()
        schemas = self.schemas
        for raw in values:
            if raw is not None and len(raw) >= HEADER and raw[0] == MAGIC:
                schema_id = int.from_bytes(raw[1:HEADER], "big")
                if schema_id not in schemas:
                    ids.add(schema_id)
        return ids

    def add(
        self,
        schema_id: int,
        schema: str,
        schema_type: str | None = None,
        references: Iterable[Any] = (),
    ) -> None:
        """Give the writer schema of ``schema_id`` (its JSON text, type and references as the
        registry serves them). One that cannot be used is kept as a refusal: every message
        written with it is dead-lettered with the reason, and it is not fetched again."""
        try:
            if schema_type not in (None, "AVRO"):
                raise ValueError(f"it is a {schema_type} schema, not Avro")
            if list(references):
                raise ValueError(
                    "it refers to other subjects' schemas (references), which "
                    "streamlearn does not resolve"
                )
            self.schemas[schema_id] = WriterSchema(schema_id, orjson.loads(schema))
        except Exception as exc:  # (orjson's, fastavro's parse errors, KeyError, ...)
            self.schemas[schema_id] = (
                f"the writer schema (id {schema_id}) cannot be used: {type(exc).__name__}: {exc}"
            )

    def refuse(self, schema_id: int, reason: str) -> None:
        """Refuse every message written with ``schema_id``, with ``reason`` (the registry does
        not know the id), until :meth:`forget` is called."""
        self.schemas[schema_id] = reason

    def forget(self, schema_id: int) -> None:
        """Forget what was given for ``schema_id`` (a refusal, to be asked again)."""
        self.schemas.pop(schema_id, None)

    def decode(self, raw: bytes | None) -> dict:
        """The record ``raw`` holds, converted as the module says; ``Malformed`` with the reason,
        or :class:`UnknownSchema` for a schema id not given yet."""
        schema_id = wire_id(raw)
        schema = self.schemas.get(schema_id)
        if schema is None:
            raise UnknownSchema(schema_id)
        if type(schema) is str:
            raise Malformed(schema)
        return schema.decode(raw)
