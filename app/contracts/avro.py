"""Avro in Confluent's wire format, decoded into the dict a mapping's dotted paths apply to (pure).

Reads: a message's value in Confluent's wire format (a magic byte 0, the writer schema's id as 4
bytes big-endian, then the Avro binary of one datum), and writer schemas as a schema registry
serves them by id (``app/kafka/registry.py`` fetches them; this module makes no request).
Gives: the decoded record as JSON would have given it, so that ``app/contracts/mapping.py`` reads
it exactly as a JSON message; a message it cannot read raises ``Malformed`` with the reason; a
schema id it has not been given raises :class:`UnknownSchema` (the caller fetches the schema and
:meth:`AvroDecoder.add` s it, or dead-letters the message if the registry does not know the id).
Keeps: each writer schema, compiled once into a function that reads its binary
(``app/contracts/avro_reader.py``), by id; and the reason of each schema that cannot be used, so
that it is not fetched again.

Avro types become, in the decoded record:

* records and maps: dicts (the mapping's dotted paths go into both), their fields in the
  schema's order; arrays: lists;
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

Cost: ``bench/avro_decode.py`` (the fraud stream as a flat record) and ``bench/avro_intake.py``
(decode, map and check) measure it against the same rows as JSON; figures in
docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from app.contracts.avro_reader import BYTES, FIXED, Opaque, compile_reader, not_avro
from app.contracts.records import Malformed

__all__ = ["BYTES", "FIXED", "AvroDecoder", "Opaque", "UnknownSchema", "WriterSchema", "wire_id"]

#: Confluent's wire format: the magic byte, then a 4-byte schema id
MAGIC = 0
HEADER = 5


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


class WriterSchema:
    """One writer schema, compiled once (``app/contracts/avro_reader.py``): what decodes a
    message written with it."""

    __slots__ = ("schema_id", "schema", "read")

    def __init__(self, schema_id: int, schema: Any) -> None:
        self.schema_id = schema_id
        #: the schema as the registry gave it (its JSON decoded)
        self.schema = schema
        self.read = compile_reader(schema)

    def decode(self, raw: bytes) -> dict:
        """The record of ``raw`` (a whole message, header included)."""
        try:
            value = self.read(raw)
        except Exception as exc:  # (read past the end, a value out of range, ...)
            raise Malformed(not_avro(self.schema_id, exc)) from None
        if type(value) is not dict:
            raise Malformed(
                f"schema id {self.schema_id} is not a record: its message decodes to "
                f"{type(value).__name__}"
            )
        return value


def _header(schema_id: int) -> bytes:
    return bytes([MAGIC]) + schema_id.to_bytes(4, "big")


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
        #: :attr:`schemas` by their wire-format header (the magic byte and the id): a message
        #: is matched to its schema by one slice and one lookup
        self.headers: dict[bytes, WriterSchema | str] = {}
        #: counts the changes to :attr:`schemas` (what was made from them is made again)
        self.version = 0

    def known(self, schema_id: int) -> bool:
        """Whether the schema of this id was given (usable or not)."""
        return schema_id in self.schemas

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids of these messages not given yet (messages not in the wire format are
        left to :meth:`decode` to refuse): what to fetch before decoding a batch."""
        ids = set()
        schemas, headers = self.schemas, self.headers
        for raw in values:
            if raw is None or raw[:HEADER] in headers:
                continue
            if len(raw) >= HEADER and raw[0] == MAGIC:
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
        self.headers[_header(schema_id)] = self.schemas[schema_id]
        self.version += 1

    def refuse(self, schema_id: int, reason: str) -> None:
        """Refuse every message written with ``schema_id``, with ``reason`` (the registry does
        not know the id), until :meth:`forget` is called."""
        self.schemas[schema_id] = reason
        self.headers[_header(schema_id)] = reason
        self.version += 1

    def forget(self, schema_id: int) -> None:
        """Forget what was given for ``schema_id`` (a refusal, to be asked again)."""
        self.schemas.pop(schema_id, None)
        self.headers.pop(_header(schema_id), None)
        self.version += 1

    def decode(self, raw: bytes | None) -> dict:
        """The record ``raw`` holds, converted as the module says; ``Malformed`` with the reason,
        or :class:`UnknownSchema` for a schema id not given yet."""
        try:
            schema = self.headers[raw[:HEADER]]  # type: ignore[index]
        except (KeyError, TypeError):  # (not in the wire format, None, or an id not given)
            raise UnknownSchema(wire_id(raw)) from None
        if type(schema) is str:
            raise Malformed(schema)
        return schema.decode(raw)  # type: ignore[union-attr]
