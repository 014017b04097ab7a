"""A writer schema compiled into one Python function that reads its Avro binary (pure).

Reads: a writer schema (its JSON decoded), parsed by fastavro's ``parse_schema`` (which refuses
one that is not valid Avro, and names every named type by its full name). Gives:
:func:`compile_reader`, a function ``read(raw)`` of a whole message in Confluent's wire format
(the 5-byte header skipped) that returns its datum, converted as ``app/contracts/avro.py``
describes (enums their symbol, timestamps epoch seconds, decimals floats, bytes and fixed the
:data:`BYTES` / :data:`FIXED` markers, ...): the same record as fastavro's reader followed by
those conversions (``tests/unit/test_avro_reader.py`` holds the two equal on random schemas and
data). And :func:`compile_fields`: the same reading of a record's fields into local variables,
with what each field always is (a scalar, a scalar or null, anything else), for a function that
maps them at once (``app/contracts/mapping_reader.py``). Keeps nothing: each call compiles
anew; ``AvroDecoder`` keeps one reader per schema id, the intake one mapped reader per schema.

Why not fastavro's reader: it is general, and a message costs it its set-up (options, named
types, a file object; about 0.75 us) and a Python-level call per field. A function made for one
schema reads the fields where they lie (``bytes`` indexing and ``struct`` for a run of doubles)
and builds the dict once: 1.1 us against fastavro's 3.4 us for the bench's flat record of 14
fields (``bench/avro_decode.py``).

A message that is not Avro of its schema raises: ``EOFError``, ``IndexError`` or
``struct.error`` when it ends before its datum does, ``ValueError`` for a union
branch, an enum symbol or a length out of range; whatever a logical type's reader raises for its
value (an invalid UUID, a date out of range). Bytes after the datum are ignored (as Confluent's
deserializers and fastavro do).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from typing import Any

from fastavro import parse_schema
from fastavro.read import LOGICAL_READERS


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

#: Confluent's wire format: the datum starts after the magic byte and the 4-byte schema id
START = 5
#: an array or map block of items that take no bytes (nulls) may not claim more than this
MAX_EMPTY_ITEMS = 1 << 16
#: a varint longer than this is not an Avro int or long
_MAX_VARINT_SHIFT = 63

#: the logical types read as their plain long and divided: the same float as
#: ``time_format = "epoch_ms"`` makes of the same number in JSON (``millis / 1000.0``)
_PLAIN_TIMESTAMPS = {
    "long-timestamp-millis": "1000.0",
    "long-timestamp-micros": "1e6",
    "long-local-timestamp-millis": "1000.0",
    "long-local-timestamp-micros": "1e6",
}
#: the other logical types: fastavro's reader for them, then what makes its value JSON's
_LOGICAL: dict[str, Callable[[Any], Any]] = {
    "bytes-decimal": float,
    "fixed-decimal": float,
    "string-uuid": str,
    "int-date": dt.date.isoformat,
    "int-time-millis": dt.time.isoformat,
    "long-time-micros": dt.time.isoformat,
}
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _more(b: bytes, p: int, n: int) -> tuple[int, int]:
    """The rest of a varint whose first byte ``n`` (> 127) was read: its raw value and where it
    ends (zig-zag undone by the caller)."""
    n &= 0x7F
    shift = 7
    while True:
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, p
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise ValueError("a varint longer than 10 bytes: not an Avro int or long")


def _eof(what: str) -> EOFError:
    return EOFError(f"the message ends inside {what}")


class _Source:
    """The text of the functions being generated, and the objects their names refer to."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.env: dict[str, Any] = {
            "_more": _more,
            "_eof": _eof,
            "_BYTES": BYTES,
            "_FIXED": FIXED,
        }
        #: record full name -> the name of its function (made once, also for recursion)
        self.records: dict[str, str] = {}
        self.functions: list[str] = []
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, prefix: str, value: Any) -> str:
        name = self.fresh(f"_{prefix}")
        self.env[name] = value
        return name


def _long(out: list[str], pad: str, var: str) -> None:
    """Read an int or long at ``p`` into ``var``."""
    out.append(f"{pad}{var} = b[p]")
    out.append(f"{pad}p += 1")
    out.append(f"{pad}if {var} > 127:")
    out.append(f"{pad}    {var}, p = _more(b, p, {var})")
    out.append(f"{pad}{var} = ({var} >> 1) ^ -({var} & 1)")


def _sized(out: list[str], src: _Source, pad: str, what: str) -> str:
    """Read a length at ``p`` and check that many bytes follow; the name of their end."""
    n, end = src.fresh("n"), src.fresh("e")
    _long(out, pad, n)
    out.append(f"{pad}{end} = p + {n}")
    out.append(f"{pad}if {n} < 0 or {end} > L:")
    out.append(f"{pad}    raise _eof({what!r})")
    return end


def _min_size(schema: Any, named: dict[str, Any], seen: frozenset[str] = frozenset()) -> int:
    """The fewest bytes a value of ``schema`` takes (0 for null, and a record being sized)."""
    if isinstance(schema, list):
        return 1
    if isinstance(schema, str):
        if schema in named:
            return 0 if schema in seen else _min_size(named[schema], named, seen | {schema})
        return {"null": 0, "float": 4, "double": 8}.get(schema, 1)
    kind = schema["type"]
    if kind in ("record", "error"):
        seen = seen | {schema["name"]}
        return sum(_min_size(f["type"], named, seen) for f in schema["fields"])
    if kind == "fixed":
        return int(schema["size"])
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _min_size(kind, named, seen)
    return 1 if kind in ("enum", "array", "map") else _min_size(kind, named, seen)


def _is_double(schema: Any) -> bool:
    return schema == "double" or (
        isinstance(schema, dict) and schema.get("type") == "double" and len(schema) == 1
    )


def _value(out: list[str], src: _Source, pad: str, schema: Any, target: str) -> None:
    """Lines reading one value of ``schema`` at ``p`` (of ``b``, ``L`` bytes long) into
    ``target`` (an assignable expression), ``p`` moved past it."""
    if isinstance(schema, list):
        _union(out, src, pad, schema, target)
        return
    if isinstance(schema, str):
        if schema in src.named:
            schema = src.named[schema]
            if schema["type"] in ("record", "error"):
                out.append(f"{pad}{target}, p = {_record_function(src, schema)}(b, p)")
                return
        else:
            _primitive(out, src, pad, schema, target)
            return
    kind = schema["type"]
    if not isinstance(kind, str):  # {"type": {...}} or {"type": [...]}
        _value(out, src, pad, kind, target)
        return
    key = f"{kind}-{schema.get('logicalType')}"
    if key in _PLAIN_TIMESTAMPS:
        raw = src.fresh("t")
        _long(out, pad, raw)
        out.append(f"{pad}{target} = {raw} / {_PLAIN_TIMESTAMPS[key]}")
        return
    if key in _LOGICAL and key in LOGICAL_READERS:
        raw = src.fresh("v")
        if kind == "bytes":  # (a decimal: its bytes themselves, not the marker)
            _bytes(out, src, pad, raw, "b[p:{end}]", "a decimal")
        elif kind == "fixed":
            _fixed(out, pad, int(schema["size"]), raw, "b[p:p + {size}]", "a decimal")
        else:
            _value(out, src, pad, kind, raw)
        reader, convert = LOGICAL_READERS[key], _LOGICAL[key]
        call = src.constant("logical", lambda v, s=schema: convert(reader(v, s, None)))
        out.append(f"{pad}{target} = {call}({raw})")
        return
    if kind in ("record", "error"):
        out.append(f"{pad}{target}, p = {_record_function(src, schema)}(b, p)")
    elif kind == "enum":
        index = src.fresh("s")
        symbols = src.constant("symbols", tuple(schema["symbols"]))
        _long(out, pad, index)
        out.append(f"{pad}if not 0 <= {index} < {len(schema['symbols'])}:")
        out.append(f"{pad}    raise ValueError(f'enum index {{{index}}} out of range')")
        out.append(f"{pad}{target} = {symbols}[{index}]")
    elif kind == "fixed":
        _fixed(out, pad, int(schema["size"]), target, "_FIXED", "a fixed")
    elif kind == "array":
        _items(out, src, pad, schema["items"], target, None)
    elif kind == "map":
        _items(out, src, pad, schema["values"], target, "string")
    else:
        _value(out, src, pad, kind, target)  # {"type": "long"} and the like


def _primitive(out: list[str], src: _Source, pad: str, kind: str, target: str) -> None:
    if kind == "null":
        out.append(f"{pad}{target} = None")
    elif kind == "boolean":
        out.append(f"{pad}{target} = b[p] != 0")
        out.append(f"{pad}p += 1")
    elif kind in ("int", "long"):
        if target.isidentifier():
            _long(out, pad, target)
        else:
            var = src.fresh("i")
            _long(out, pad, var)
            out.append(f"{pad}{target} = {var}")
    elif kind in ("float", "double"):
        size, code = (4, "<f") if kind == "float" else (8, "<d")
        unpack = src.constant(kind, struct.Struct(code).unpack_from)
        out.append(f"{pad}{target}, = {unpack}(b, p)")
        out.append(f"{pad}p += {size}")
    elif kind == "string":
        end = _sized(out, src, pad, "a string")
        out.append(f"{pad}{target} = b[p:{end}].decode()")
        out.append(f"{pad}p = {end}")
    elif kind == "bytes":
        _bytes(out, src, pad, target, "_BYTES", "a bytes value")
    else:
        raise ValueError(f"unknown Avro type {kind!r}")


def _bytes(out: list[str], src: _Source, pad: str, target: str, value: str, what: str) -> None:
    """A length, then that many bytes: ``target`` = ``value`` (``{end}``: where they end)."""
    end = _sized(out, src, pad, what)
    out.append(f"{pad}{target} = {value.format(end=end)}")
    out.append(f"{pad}p = {end}")


def _fixed(out: list[str], pad: str, size: int, target: str, value: str, what: str) -> None:
    """``size`` bytes: ``target`` = ``value`` (``{size}``: their number)."""
    out.append(f"{pad}if p + {size} > L:")
    out.append(f"{pad}    raise _eof('{what} of {size} bytes')")
    out.append(f"{pad}{target} = {value.format(size=size)}")
    out.append(f"{pad}p += {size}")


def _union(out: list[str], src: _Source, pad: str, branches: list, target: str) -> None:
    index = src.fresh("u")
    _long(out, pad, index)
    for i, branch in enumerate(branches):
        out.append(f"{pad}{'if' if i == 0 else 'elif'} {index} == {i}:")
        _value(out, src, pad + "    ", branch, target)
    out.append(f"{pad}else:")
    out.append(f"{pad}    raise ValueError(f'union branch {{{index}}} out of range')")


def _items(out: list[str], src: _Source, pad: str, item: Any, target: str, key: str | None) -> None:
    """An array (``key`` None) or a map (``key``: ``"string"``): blocks of items, each block
    its count first (negative: its size in bytes follows, skipped), a count of 0 the end."""
    box, count, skip = src.fresh("a"), src.fresh("c"), src.fresh("z")
    least = _min_size(item, src.named) + (1 if key else 0)
    out.append(f"{pad}{box} = {{}}" if key else f"{pad}{box} = []")
    _long(out, pad, count)
    out.append(f"{pad}while {count}:")
    inner = pad + "    "
    out.append(f"{inner}if {count} < 0:")
    out.append(f"{inner}    {count} = -{count}")
    _long(out, inner + "    ", skip)
    if least:
        out.append(f"{inner}if {count} * {least} > L - p:")
    else:
        out.append(f"{inner}if {count} > {MAX_EMPTY_ITEMS}:")
    out.append(f"{inner}    raise _eof('a block of ' + str({count}) + ' items')")
    out.append(f"{inner}for _ in range({count}):")
    each = src.fresh("x")
    if key:
        name = src.fresh("k")
        _primitive(out, src, inner + "    ", "string", name)
        _value(out, src, inner + "    ", item, each)
        out.append(f"{inner}    {box}[{name}] = {each}")
    else:
        _value(out, src, inner + "    ", item, each)
        out.append(f"{inner}    {box}.append({each})")
    _long(out, inner, count)
    out.append(f"{pad}{target} = {box}")


def _fields(
    out: list[str], src: _Source, pad: str, record: dict, target: Callable[[int, str], str]
) -> None:
    """Every field of ``record`` into ``target(index, name)`` (an entry of a dict, or a local
    variable), in the schema's order; a run of plain doubles read by one ``struct`` call."""
    fields = record["fields"]
    i = 0
    while i < len(fields):
        run = i
        while run < len(fields) and _is_double(fields[run]["type"]):
            run += 1
        if run - i >= 2:
            unpack = src.constant("doubles", struct.Struct(f"<{run - i}d").unpack_from)
            targets = ", ".join(target(j, fields[j]["name"]) for j in range(i, run))
            out.append(f"{pad}{targets} = {unpack}(b, p)")
            out.append(f"{pad}p += {8 * (run - i)}")
            i = run
            continue
        field = fields[i]
        _value(out, src, pad, field["type"], target(i, field["name"]))
        i += 1


def _entry(box: str) -> Callable[[int, str], str]:
    return lambda _i, name: f"{box}[{name!r}]"


def _record_function(src: _Source, record: dict) -> str:
    """The name of the function ``f(b, p) -> (dict, p)`` reading ``record`` (made once)."""
    name = record["name"]
    if name in src.records:
        return src.records[name]
    function = src.fresh("_record")
    src.records[name] = function
    out = [f"def {function}(b, p):", "    L = len(b)", "    r = {}"]
    _fields(out, src, "    ", record, _entry("r"))
    out.append("    return r, p")
    src.functions.append("\n".join(out))
    return function


def compile_reader(schema: Any) -> Callable[[bytes], Any]:
    """The function reading a whole wire-format message of the writer schema ``schema`` (its
    JSON decoded; fastavro's ``parse_schema`` refuses one that is not valid Avro) into its
    converted datum.

    >>> read = compile_reader({"type": "record", "name": "E", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]},
    ...     {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]})
    >>> read(b"\\x00\\x00\\x00\\x00\\x01" + b"\\x04e1" + b"\\x02\\x06" + b"\\xd6\\x2b")
    {'id': 'e1', 'n': 3, 'at': 2.795}
    >>> read(b"\\x00\\x00\\x00\\x00\\x01\\x08e1")
    Traceback (most recent call last):
    EOFError: the message ends inside a string
    """
    layout = compile_fields(schema)
    if layout is not None:  # a record: its fields read into locals, then its dict made once
        body = ["def read(b):", *layout.lines, f"    return {layout.record()}"]
        return exec_function("read", [*layout.functions, "\n".join(body)], layout.env)
    named, parsed = _parse(schema)
    src = _Source(named)
    body = ["def read(b):", "    p = 5", "    L = len(b)"]
    _value(body, src, "    ", parsed, "value")
    body.append("    return value")
    return exec_function("read", [*src.functions, "\n".join(body)], src.env)


def exec_function(name: str, functions: list[str], env: dict[str, Any]) -> Callable:
    """The function ``name`` among the text of ``functions`` (made from a schema or a mapping:
    every name in it is generated, every value from the schema held in ``env``)."""
    exec(compile("\n\n".join(functions), f"<{name}>", "exec"), env)  # noqa: S102
    return env[name]


def not_avro(schema_id: int, exc: Exception) -> str:
    """The reason a message that the reader of schema ``schema_id`` raised ``exc`` on is
    refused (``AvroDecoder.decode``'s and the mapped readers')."""
    if isinstance(exc, IndexError | struct.error):  # (a field read past the end of the message)
        exc = EOFError("the message ends before its record does")
    return f"not Avro of schema id {schema_id}: {type(exc).__name__}: {exc}"


def _parse(schema: Any) -> tuple[dict[str, Any], Any]:
    """fastavro's parse of ``schema``: its named types by full name, and the parsed schema."""
    named: dict[str, Any] = {}
    return named, parse_schema(schema, named_schemas=named)


#: what a top-level field always reads as: a feature as it is (``scalar``: a number, string or
#: bool), that or None (``nullable``), anything else (``other``: a record, a map, a list, a
#: marker, a union of several kinds)
SCALAR, NULLABLE, OTHER = "scalar", "nullable", "other"


def _kind(schema: Any, named: dict[str, Any]) -> str:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(schema) == 2 and len(branches) == 1 and _kind(branches[0], named) == SCALAR:
            return NULLABLE
        return OTHER
    if isinstance(schema, str):
        if schema in named:
            return _kind(named[schema], named)
        return SCALAR if schema in _PRIMITIVES - {"null", "bytes"} else OTHER
    kind = schema["type"]
    if not isinstance(kind, str):
        return _kind(kind, named)
    key = f"{kind}-{schema.get('logicalType')}"
    if key in _PLAIN_TIMESTAMPS or (key in _LOGICAL and key in LOGICAL_READERS):
        return SCALAR  # (a float or a string)
    if kind == "enum":
        return SCALAR
    if kind in _PRIMITIVES:
        return _kind(kind, named)
    return OTHER


class Layout:
    """A record schema's fields read into local variables, for a function that goes on with
    them (``app/contracts/mapping_reader.py``: a mapping applied to them without a dict).

    ``functions``: the text of the functions the lines call (nested records); ``lines``: the
    body, from ``p = 5`` (the datum after the header) on, each indented by one level;
    ``env``: the objects they name; ``fields``: ``(name, variable, kind)`` in the schema's
    order (kind: :data:`SCALAR`, :data:`NULLABLE` or :data:`OTHER`)."""

    __slots__ = ("functions", "lines", "env", "fields")

    def __init__(self, functions: list[str], lines: list[str], env: dict, fields: list) -> None:
        self.functions = functions
        self.lines = lines
        self.env = env
        self.fields = fields

    def record(self) -> str:
        """The expression of the record's dict, made from the locals (in the schema's order)."""
        entries = ", ".join(f"{name!r}: {var}" for name, var, _ in self.fields)
        return f"{{{entries}}}"


def compile_fields(schema: Any) -> Layout | None:
    """The :class:`Layout` of the writer schema ``schema`` (its JSON decoded), or None when its
    datum is not a record.

    >>> layout = compile_fields({"type": "record", "name": "E", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]})
    >>> layout.fields
    [('id', 'F0', 'scalar'), ('n', 'F1', 'nullable')]
    """
    named, parsed = _parse(schema)
    top = named.get(parsed, parsed) if isinstance(parsed, str) else parsed
    if not (isinstance(top, dict) and top.get("type") in ("record", "error")):
        return None
    src = _Source(named)
    lines = ["    p = 5", "    L = len(b)"]
    _fields(lines, src, "    ", top, lambda i, _name: f"F{i}")
    fields = [(f["name"], f"F{i}", _kind(f["type"], named)) for i, f in enumerate(top["fields"])]
    return Layout(src.functions, lines, src.env, fields)
