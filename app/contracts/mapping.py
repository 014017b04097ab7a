"""How a team's own topics map onto streamlearn's events and labels (pure: no Faust, no Kafka).

Reads: the ``[events]`` and ``[labels]`` tables of the config file (``app/settings.py``), and per
message its JSON value (or, with ``format = "avro"``, the record ``app/contracts/avro.py``
decoded: :meth:`EventMapping.read_value`) and where it came from (:class:`Origin`: topic,
partition, offset, Kafka key and timestamp). Gives: the event ``{"id", "key", "ts", "x", "y"?}``
or the label ``{"id", "y", "ts"}`` the rest of streamlearn works on, checked as
``app/contracts/records.py`` checks its own contract; a message it cannot read raises
``Malformed`` with a reason that names the field.

``[events]`` (every key optional): ``topic``; ``id`` (a dotted path into the message; absent:
``"<topic>-<partition>-<offset>"``); ``key`` (absent: the Kafka key, as UTF-8); ``time`` and
``time_format`` (``epoch_s``, the default, ``epoch_ms`` or ``iso8601`` with a zone or ``Z``;
``time`` absent: the Kafka timestamp); ``label`` (absent: events carry none; a message without
the field is an unlabelled event); ``features`` (a list of paths) or ``exclude`` (a list of
paths), by default every other scalar field, a nested one named by its dotted path. A feature
that is null is absent from that event; an Avro bytes or fixed field is skipped, and refused
when ``features`` names it. ``format``: ``json`` (the default) or ``avro`` (Confluent's wire format,
decoded with the writer's schema from the schema registry). ``skip_when_null``: a dotted path
(Debezium's ``payload.after``); a message whose value there is null or absent is a delete, not
an event: :class:`Deleted` is raised, and the intake counts and skips it. ``[labels]``:
``topic``, ``id``, ``label``, ``time``, ``time_format``, ``format`` (``id`` and ``label``
required there).

An event mapping is compiled once into one function (:attr:`EventMapping.reader`,
``app/contracts/mapping_reader.py``) that falls back on this module's general code for what its
fast path does not take; :meth:`EventMapping.read_general` is that general code alone, and the
two give the same events and the same reasons (``tests/unit/test_mapping_reader.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from app.contracts.avro import AvroDecoder, Opaque
from app.contracts.avro_reader import compile_fields
from app.contracts.mapping_reader import compile_event_reader
from app.contracts.records import (
    Malformed,
    _check_features,
    _check_id,
    _check_label,
    _check_ts,
    _decode,
)

TIME_FORMATS = ("epoch_s", "epoch_ms", "iso8601")
#: objects a feature may be nested in (a message nested deeper is refused, naming the field)
MAX_DEPTH = 32
#: how a topic's values are written: JSON, or Avro in Confluent's wire format
FORMATS = ("json", "avro")
_MISSING = object()


class MappingError(ValueError):
    """A mapping in the config file that cannot work; the text names the entry."""


class Deleted(Exception):
    """The message is a delete (its ``skip_when_null`` path is null or absent): not an event,
    counted and skipped, not dead-lettered."""


class Origin(NamedTuple):
    """Where a message came from: what a mapping may take instead of a field (a tuple: made
    for every message of a mapped topic, cheaply)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int


Path = tuple[str, ...]


def _path(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value or any(not p for p in value.split(".")):
        raise MappingError(f"{where} must be a dotted path like 'card.id', got {value!r}")
    return tuple(value.split("."))


def _get(value: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


#: the types of a feature taken as it is (their subclasses go through the checks of ``_add``)
_SCALARS = frozenset({float, int, str, bool})


def _name(path: Path) -> str:
    return ".".join(path)


@dataclass(frozen=True)
class Fields:
    """The parts of a mapping both events and labels have."""

    topic: str
    id: Path | None
    time: Path | None
    time_format: str
    label: Path | None
    #: ``json`` or ``avro`` (the mapping reads the decoded record either way)
    format: str = "json"

    def read_id(self, value: dict, origin: Origin) -> str:
        if self.id is None:
            return f"{origin.topic}-{origin.partition}-{origin.offset}"
        ident = _required(value, self.id)
        if type(ident) is int:  # numeric ids are common in a team's own topics
            ident = str(ident)
        return _check_id(ident, f"id ({_name(self.id)})")

    def read_time(self, value: dict, origin: Origin) -> float:
        if self.time is None:
            return origin.timestamp_ms / 1000.0
        return self.time_of(_required(value, self.time))

    def time_of(self, raw: Any) -> float:
        """The event time of ``raw``, the value at the mapping's ``time`` path, checked."""
        where = _name(self.time)
        if self.time_format == "iso8601":
            if not isinstance(raw, str):
                raise Malformed(f"time ({where}) must be an ISO-8601 string, got {raw!r}")
            try:
                parsed = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise Malformed(f"time ({where}) is not ISO-8601: {raw!r}") from None
            if parsed.tzinfo is None:
                raise Malformed(f"time ({where}) has no zone (add Z or +hh:mm): {raw!r}")
            return _check_ts(parsed.timestamp())
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise Malformed(f"time ({where}) must be a number ({self.time_format}), got {raw!r}")
        try:
            ts = raw / 1000.0 if self.time_format == "epoch_ms" else raw
        except OverflowError:  # (an int past any float)
            raise Malformed(
                f"time ({where}) is out of range: an int of {raw.bit_length()} bits"
            ) from None
        try:
            return _check_ts(ts)
        except Malformed as exc:
            raise Malformed(f"time ({where}): {exc}") from None


def _required(value: dict, path: Path) -> Any:
    found = _get(value, path)
    if found is _MISSING:
        raise Malformed(f"missing field {_name(path)!r}")
    return found


def _fields(table: Mapping, default_topic: str, where: str, allowed: set[str]) -> Fields:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise MappingError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )
    topic = table.get("topic", default_topic)
    if not isinstance(topic, str) or not topic:
        raise MappingError(f"{where}.topic must be a topic name, got {topic!r}")
    time_format = table.get("time_format", "epoch_s")
    if time_format not in TIME_FORMATS:
        raise MappingError(
            f"{where}.time_format must be one of {', '.join(TIME_FORMATS)}, got {time_format!r}"
        )
    value_format = table.get("format", "json")
    if value_format not in FORMATS:
        raise MappingError(
            f"{where}.format must be one of {', '.join(FORMATS)}, got {value_format!r}"
        )
    paths = {
        name: _path(table[name], f"{where}.{name}") if name in table else None
        for name in ("id", "time", "label")
    }
    return Fields(topic, paths["id"], paths["time"], time_format, paths["label"], value_format)


@dataclass(frozen=True)
class EventMapping:
    """How a message of the events topic becomes an event."""

    fields: Fields
    key: Path | None
    features: tuple[Path, ...] | None
    exclude: tuple[Path, ...]
    #: a message whose value here is null or absent is a delete (:class:`Deleted`)
    skip_when_null: Path | None = None

    @classmethod
    def from_config(cls, table: Mapping, default_topic: str, where: str) -> EventMapping:
        allowed = {"topic", "id", "key", "time", "time_format", "label", "features", "exclude"}
        allowed |= {"format", "skip_when_null"}
        fields = _fields(table, default_topic, where, allowed)
        if "features" in table and "exclude" in table:
            raise MappingError(f"{where}: give features or exclude, not both")
        lists = {}
        for name in ("features", "exclude"):
            paths = table.get(name, [])
            if not isinstance(paths, list):
                raise MappingError(f"{where}.{name} must be a list of paths, got {paths!r}")
            lists[name] = tuple(_path(p, f"{where}.{name}[{i}]") for i, p in enumerate(paths))
        if "features" in table and not lists["features"]:
            raise MappingError(f"{where}.features is empty: list at least one path")
        key = _path(table["key"], f"{where}.key") if "key" in table else None
        features = lists["features"] if "features" in table else None
        skip = table.get("skip_when_null")
        skip = _path(skip, f"{where}.skip_when_null") if skip is not None else None
        return cls(fields, key, features, lists["exclude"], skip)

    @property
    def topic(self) -> str:
        return self.fields.topic

    def used(self) -> set[Path]:
        """The paths the event takes other than as features."""
        f = self.fields
        return {p for p in (f.id, f.time, f.label, self.key) if p is not None}

    def read(self, raw: bytes | None, origin: Origin) -> dict:
        """The event ``raw`` (JSON) maps to, checked; ``Malformed`` names what it could not read."""
        return self.read_value(_decode(raw), origin)

    def read_value(self, value: dict, origin: Origin) -> dict:
        """The event a decoded message maps to (a JSON object, or an Avro record as
        ``app/contracts/avro.py`` decodes it), checked; ``Malformed`` names what it could not
        read; :class:`Deleted` for a delete (``skip_when_null``).

        >>> mapping = EventMapping.from_config(
        ...     {"id": "payload.after.id", "time": "payload.ts_ms", "time_format": "epoch_ms",
        ...      "features": ["payload.after.amount"], "skip_when_null": "payload.after"},
        ...     "t", "[events]")
        >>> origin = Origin("t", 0, 5, None, 0)
        >>> mapping.read_value({"payload": {"after": {"id": 7, "amount": 2.5}, "ts_ms": 1500}},
        ...                    origin)
        {'id': '7', 'key': None, 'ts': 1.5, 'x': {'payload.after.amount': 2.5}}
        >>> mapping.read_value({"payload": {"after": None, "ts_ms": 1500}}, origin)
        Traceback (most recent call last):
        app.contracts.mapping.Deleted: payload.after is null: a delete
        """
        return self.reader(value, origin)

    @cached_property
    def reader(self) -> Any:
        """:meth:`read_value`, compiled for this mapping's paths (``mapping_reader.py``); its
        slow paths are this class's general code, :meth:`read_general` reads as it does."""
        return self._compiled()

    def avro_reader(self, schema_id: int, schema: Any) -> Any:
        """The function ``read(raw, origin)`` of a whole wire-format message written with the
        Avro record schema ``schema`` (id ``schema_id``): its fields read and mapped in one
        function, no record dict made; what ``decoder.decode`` then :meth:`read_value` give,
        refusals included. None when the schema's datum is not a record."""
        layout = compile_fields(schema)
        if layout is None:
            return None
        return self._compiled(layout=layout, schema_id=schema_id)

    def _compiled(self, **avro: Any) -> Any:
        f = self.fields
        return compile_event_reader(
            id_path=f.id,
            key_path=self.key,
            time_path=f.time,
            time_format=f.time_format,
            label_path=f.label,
            features=self.features,
            exclude=self.exclude,
            used=self._used[0],
            skip_when_null=self.skip_when_null,
            slow={
                "time": f.time_of,
                "origin_key": lambda origin: self.read_key({}, origin),
                "field": self._field,
                "add": self._add,
                "walk": self._walk,
                "deleted": Deleted,
            },
            **avro,
        )

    def read_general(self, value: dict, origin: Origin) -> dict:
        """:meth:`read_value` read by the general code, path by path (what the compiled reader
        must equal: ``tests/unit/test_mapping_reader.py``)."""
        if self.skip_when_null is not None:
            found = _get(value, self.skip_when_null)
            if found is None or found is _MISSING:
                raise Deleted(f"{_name(self.skip_when_null)} is null: a delete")
        event: dict[str, Any] = {
            "id": self.fields.read_id(value, origin),
            "key": self.read_key(value, origin),
            "ts": self.fields.read_time(value, origin),
            "x": self.read_features(value),
        }
        if self.fields.label is not None:
            y = _get(value, self.fields.label)
            if y is not _MISSING and y is not None:
                event["y"] = _check_label(y)
        return event

    def read_key(self, value: dict, origin: Origin) -> str | None:
        if self.key is None:
            if origin.key is None:
                return None
            try:
                return _check_id(origin.key.decode(), "key (the Kafka key)")
            except UnicodeDecodeError:
                raise Malformed("key (the Kafka key) is not UTF-8") from None
        key = _required(value, self.key)
        if key is None:
            return None
        if type(key) is int:
            key = str(key)
        return _check_id(key, f"key ({_name(self.key)})")

    @cached_property
    def _used(self) -> tuple[set[Path], frozenset[str]]:
        """:meth:`used`, and the names of its one-part paths (the top-level fields it takes)."""
        used = self.used()
        return used, frozenset(p[0] for p in used if len(p) == 1)

    def read_features(self, value: dict) -> dict:
        x: dict[str, Any] = {}
        if self.features is not None:
            for path in self.features:
                feature = _required(value, path)
                self._add(x, path, feature, True)
        elif self.exclude:
            self._walk(value, (), self._used[0], x)
        else:  # every field: the top level's scalars taken at once, the rest walked
            used, top = self._used
            for name, feature in value.items():
                if type(feature) in _SCALARS:  # (what _add does with them)
                    if name not in top:
                        x[name] = feature
                elif (name,) not in used:
                    self._field((name,), feature, used, x)
        _check_features(x)
        return x

    def _walk(self, value: dict, prefix: Path, used: set[Path], x: dict) -> None:
        exclude = self.exclude
        for name, feature in value.items():
            path = (*prefix, name)
            if path in used or (exclude and any(path[: len(e)] == e for e in exclude)):
                continue
            self._field(path, feature, used, x)

    def _field(self, path: Path, feature: Any, used: set[Path], x: dict) -> None:
        """Take the field at ``path`` (neither used nor excluded): a feature, or walked into."""
        if type(feature) in _SCALARS:  # (most fields: what _add does with them, at once)
            x[_name(path)] = feature
        elif isinstance(feature, dict):
            if len(path) >= MAX_DEPTH:  # (JSON may nest deeper than Python recurses)
                raise Malformed(
                    f"feature {_name(path[:3])!r}... is nested deeper than {MAX_DEPTH} objects"
                )
            self._walk(feature, path, used, x)
        else:
            self._add(x, path, feature, False)

    @staticmethod
    def _add(x: dict, path: Path, feature: Any, named: bool) -> None:
        """Add one feature (``named``: the mapping lists it under ``features``)."""
        if feature is None:
            return  # absent from this event
        if isinstance(feature, list | dict):
            kind = "a list" if isinstance(feature, list) else "an object"
            raise Malformed(f"feature {_name(path)!r} is {kind}, not a number, string or bool")
        if type(feature) is Opaque:  # Avro bytes or fixed: taken only when named, and refused
            if named:
                raise Malformed(
                    f"field {_name(path)!r} is Avro {feature.kind}: it cannot be a feature"
                )
            return
        x[_name(path)] = feature

    def routing_key(
        self, raw: bytes | None, origin: Origin, decoder: AvroDecoder | None = None
    ) -> bytes:
        """What the re-key stage keys a message by: its mapped key, else its mapped id; a
        message the mapping cannot read (a delete, a tombstone, not Avro) keeps its Kafka key,
        else its origin. ``decoder``: with ``format = "avro"``, what decodes it (holding the
        message's schema: the re-key stage loads a read's schemas first)."""
        try:
            value = _decode(raw) if decoder is None else decoder.decode(raw)
            key = self.read_key(value, origin)
            return (key if key is not None else self.fields.read_id(value, origin)).encode()
        except Malformed:
            if origin.key is not None:
                return origin.key
            return f"{origin.partition}:{origin.offset}".encode()


@dataclass(frozen=True)
class LabelMapping:
    """How a message of the labels topic becomes a label."""

    fields: Fields

    @classmethod
    def from_config(cls, table: Mapping, default_topic: str, where: str) -> LabelMapping:
        fields = _fields(
            table, default_topic, where, {"topic", "id", "label", "time", "time_format", "format"}
        )
        for name in ("id", "label"):
            if getattr(fields, name) is None:
                raise MappingError(f"{where}.{name} is required: the path of the label's {name}")
        return cls(fields)

    @property
    def topic(self) -> str:
        return self.fields.topic

    def read(self, raw: bytes | None, origin: Origin) -> dict:
        """The label ``raw`` (JSON) maps to, checked."""
        return self.read_value(_decode(raw), origin)

    def read_value(self, value: dict, origin: Origin) -> dict:
        """The label a decoded message (JSON object or Avro record) maps to, checked."""
        y = _get(value, self.fields.label)
        if y is _MISSING or y is None:
            raise Malformed(f"missing field {_name(self.fields.label)!r}")
        return {
            "id": self.fields.read_id(value, origin),
            "y": _check_label(y),
            "ts": self.fields.read_time(value, origin),
        }
