"""What a raw events message goes through before windows and models, for the stream and offline.

Reads one message's bytes, or its value already decoded from JSON (``POST /predict/``), and,
with an ``[events]`` mapping, where it came from; gives the event, or why it is refused. Keeps
nothing but, with ``format = "avro"`` in ``[events]``, the :class:`~app.contracts.avro.AvroDecoder`
(the writer schemas by id) and, per writer schema, the function that reads and maps its
messages at once (``EventMapping.avro_reader``): the caller gives the decoder the schemas of a
read before taking its messages
(``RegistryClient.load_retrying`` in the engine, the re-key stage and the ``features`` command:
this module asks no registry). The engine (``agents/engine.py``) and the offline
``features`` command (``app/features/offline.py``) both call :meth:`Intake.event`, so that both take
the same events: streamlearn's own shape or the mapping (JSON, or Avro decoded with the writer's
schema, then the same dotted paths), then the user's transform, then the clock and the label
checks (docs/contracts.md).

Not events, counted and skipped (no dead letter): with Avro, a tombstone (a null value:
:data:`TOMBSTONES`); with ``skip_when_null`` in the mapping, a message whose value there is null
or absent (a Debezium delete, ``after`` null: :data:`DELETES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from app.contracts.avro import HEADER, AvroDecoder, WriterSchema
from app.contracts.mapping import Deleted, EventMapping, Origin
from app.contracts.records import Malformed, ahead_of_clock, check_event, parse_event
from app.contracts.transform import configured as configured_transform
from app.models.label_rules import LabelCheck

if TYPE_CHECKING:
    from app.config import Config

#: counters of what :meth:`Intake.event` refuses
DEAD_LETTERS = "dead_letters"
TRANSFORM_ERRORS = "transform_errors"
TRANSFORM_DROPPED = "transform_dropped"
#: ... and skips, counted only: an Avro topic's null values (Kafka's tombstones, which log
#: compaction and Debezium write after a delete), and the mapping's deletes (``skip_when_null``)
TOMBSTONES = "tombstones"
DELETES = "deletes"


class Intake:
    """The checks of one deployment: its mapping, transform, clock tolerance and models."""

    def __init__(
        self,
        mapping: EventMapping | None,
        transform: Callable[[dict], dict | None] | None,
        max_future: float,
        check_label: LabelCheck,
        decoder: AvroDecoder | None = None,
    ) -> None:
        self.mapping = mapping
        self.transform = transform
        self.max_future = max_future
        self.check_label = check_label
        #: ``format = "avro"``: what decodes the messages (its schemas given by the caller)
        self.decoder = decoder
        if decoder is not None and mapping is None:
            raise ValueError("an Avro decoder needs a mapping: it maps the decoded records")
        #: the mapping's compiled reader of a decoded message
        self.read_value = mapping.reader if mapping is not None else None
        #: with Avro, by wire-format header: the function reading and mapping a message of that
        #: schema at once (``EventMapping.avro_reader``), made again when the decoder's
        #: schemas change (its ``version``)
        self.avro_readers: dict[bytes, Callable] = {}
        self.avro_version = -1

    @classmethod
    def configured(cls, config: Config) -> Intake:
        """The checks ``config`` sets: its ``[events]`` mapping, its transform (imported), its
        clock tolerance and its models' labels (the engine's and the offline command's)."""
        mapping = config.event_mapping
        avro = mapping is not None and mapping.fields.format == "avro"
        return cls(
            mapping,
            configured_transform(config),
            config.max_future,
            config.check_label,
            AvroDecoder() if avro else None,
        )

    def event(
        self, raw: bytes | None, origin: Origin | None, now: float
    ) -> dict | tuple[str, str | None]:
        """The event ``raw`` holds, checked; else ``(counter, reason)``: a dead letter with its
        reason, or ``(counter, None)`` when it is counted only (the transform dropped it, a
        tombstone, a delete). ``origin`` is needed only with a mapping; ``now`` is the wall
        clock. With Avro, the decoder must hold the message's schema id (given, or refused):
        else ``UnknownSchema`` is raised (the caller did not load the read's schemas).

        >>> import struct
        >>> from app.contracts.mapping import EventMapping
        >>> mapping = EventMapping.from_config({"format": "avro", "id": "id", "time": "at"}, "t", "e")
        >>> intake = Intake(mapping, None, 3600.0, lambda y: None, AvroDecoder())
        >>> intake.decoder.add(3, '{"type": "record", "name": "E", "fields": ['
        ...     '{"name": "id", "type": "string"}, {"name": "at", "type": "double"}, '
        ...     '{"name": "amount", "type": ["null", "double"]}]}')
        >>> raw = b"\\x00\\x00\\x00\\x00\\x03\\x04e1" + struct.pack("<d", 5.0) + b"\\x02" + struct.pack("<d", 2.5)
        >>> intake.event(raw, Origin("t", 0, 9, None, 0), 10.0)
        {'id': 'e1', 'key': None, 'ts': 5.0, 'x': {'amount': 2.5}}
        >>> intake.event(None, Origin("t", 0, 10, b"k", 0), 10.0)
        ('tombstones', None)
        >>> intake.event(b'{"id": "e2"}', Origin("t", 0, 11, None, 0), 10.0)[1]
        "not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 (it looks like JSON)"
        """  # noqa: E501
        try:
            if self.decoder is not None:
                if raw is None:
                    return TOMBSTONES, None
                if self.avro_version != self.decoder.version:
                    self.avro_readers.clear()
                    self.avro_version = self.decoder.version
                read = self.avro_readers.get(raw[:HEADER])
                if read is None:
                    read = self._avro_reader(raw)
                event = read(raw, origin)
            elif self.mapping is None:
                event = parse_event(raw)
            else:
                event = self.mapping.read(raw, origin)
        except Malformed as exc:
            return DEAD_LETTERS, str(exc)
        except Deleted:
            return DELETES, None
        return self._checked(event, now)

    def _avro_reader(self, raw: bytes) -> Callable:
        """The function that reads and maps ``raw``: its schema's own (kept), else (an id not
        given, a refused schema, a body not in the wire format, a datum that is not a record)
        the decoder then the mapping, which refuse it with the reason."""
        schema = self.decoder.headers.get(raw[:HEADER])
        read = None
        if isinstance(schema, WriterSchema):
            read = self.mapping.avro_reader(schema.schema_id, schema.schema)
            if read is not None:
                self.avro_readers[raw[:HEADER]] = read
        return read or self._decode_then_map

    def _decode_then_map(self, raw: bytes, origin: Origin | None) -> dict:
        return self.read_value(self.decoder.decode(raw), origin)

    def event_of(
        self, value: object, origin: Origin | None, now: float
    ) -> dict | tuple[str, str | None]:
        """As :meth:`event`, for a message already decoded from JSON (``POST /predict/``'s
        events: a body is decoded once, and a value orjson reads may be nested deeper than it
        writes, so it is not written again)."""
        try:
            if self.mapping is None:
                event = check_event(value)
            elif type(value) is dict:
                event = self.mapping.read_value(value, origin)
            else:
                raise Malformed(f"expected a JSON object, got {type(value).__name__}")
        except Malformed as exc:
            return DEAD_LETTERS, str(exc)
        except Deleted:
            return DELETES, None
        return self._checked(event, now)

    def _checked(self, event: dict, now: float) -> dict | tuple[str, str | None]:
        """The transform, the clock and the label checks of a well-formed ``event``."""
        if self.transform is not None:
            try:
                out = self.transform(event)
            except Exception as exc:  # the user's code: any error dead-letters this event only
                return TRANSFORM_ERRORS, f"transform raised {type(exc).__name__}: {exc}"
            if out is None:
                return TRANSFORM_DROPPED, None
            try:
                event = check_event(out)
            except Malformed as exc:
                return TRANSFORM_ERRORS, f"transform returned an invalid event: {exc}"
            # Python objects JSON cannot hold (a lone surrogate in a string, a feature name that
            # is not a string, a float subclass such as numpy's) pass the checks above but would
            # stop the worker at its next write of the event: refused here instead
            try:
                orjson.dumps(event)
            except orjson.JSONEncodeError as exc:
                return TRANSFORM_ERRORS, f"transform returned an event JSON cannot hold: {exc}"
        if event["ts"] - now > self.max_future:  # (the cheap test first: reasons are rare)
            return DEAD_LETTERS, ahead_of_clock(event["ts"], now, self.max_future)
        if "y" in event:  # a label the models cannot learn: before any of them counts the event
            problem = self.check_label(event["y"])
            if problem is not None:
                return DEAD_LETTERS, problem
        return event
