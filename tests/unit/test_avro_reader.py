"""The compiled Avro reader (app/contracts/avro_reader.py) against fastavro's writer: random
schemas (every Avro type, logical types, unions, named and recursive types) and random data,
written by fastavro and read back as the conversions of app/contracts/avro.py say; and
malformed bodies (cut short, bytes changed, blocks and lengths out of range) refused, never
read past, never looped on."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import random
import struct
import uuid

import pytest
from fastavro import parse_schema, schemaless_writer

from app.contracts.avro_reader import BYTES, FIXED, MAX_EMPTY_ITEMS, compile_reader

HEADER = b"\x00\x00\x00\x00\x01"
#: what a body that is not Avro of its schema may raise (AvroDecoder turns each into Malformed)
REFUSALS = (EOFError, IndexError, struct.error, ValueError, OverflowError)


class Schemas:
    """A random writer schema, and a function making a random datum of it together with what
    the reader must give for it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names = 0

    def name(self) -> str:
        self.names += 1
        return f"T{self.names}"

    def make(self, depth: int = 0):
        """(schema, make) where make() -> (datum to write, expected read)."""
        rng = self.rng
        kinds = ["null", "boolean", "int", "long", "float", "double", "string", "bytes"]
        kinds += ["ts-millis", "ts-micros", "local-ts-millis", "date", "time-millis"]
        kinds += ["time-micros", "uuid", "decimal-bytes", "decimal-fixed", "enum", "fixed"]
        if depth < 3:
            kinds += ["record", "record", "array", "map", "union", "union", "recursive"]
        return getattr(self, "_" + rng.choice(kinds).replace("-", "_"))(depth)

    def _null(self, depth):
        return "null", lambda: (None, None)

    def _boolean(self, depth):
        return "boolean", lambda: (v := self.rng.random() < 0.5, v)

    def _int(self, depth):
        return "int", lambda: (v := self.rng.randint(-(2**31), 2**31 - 1), v)

    def _long(self, depth):
        def make():
            v = self.rng.choice([self.rng.randint(-(2**63), 2**63 - 1), self.rng.randint(-99, 99)])
            return v, v

        return "long", make

    def _float(self, depth):
        def make():
            v = struct.unpack("<f", struct.pack("<f", self.rng.uniform(-1e6, 1e6)))[0]
            v = self.rng.choice([v, float("inf"), -0.0, 0.0])
            return v, v

        return {"type": "float"}, make

    def _double(self, depth):
        def make():
            v = self.rng.choice([self.rng.random(), self.rng.uniform(-1e300, 1e300), -0.0, 1e-310])
            return v, v

        return "double", make

    def _string(self, depth):
        def make():
            chars = 'aZ09 _-é€😀\n"'
            v = "".join(self.rng.choice(chars) for _ in range(self.rng.randint(0, 12)))
            return v, v

        return "string", make

    def _bytes(self, depth):
        return "bytes", lambda: (self.rng.randbytes(self.rng.randint(0, 9)), BYTES)

    def _ts_millis(self, depth, logical="timestamp-millis", scale=1000.0):
        def make():
            v = self.rng.randint(-(2**40), 2**45)
            return v, v / scale

        return {"type": "long", "logicalType": logical}, make

    def _ts_micros(self, depth):
        return self._ts_millis(depth, "timestamp-micros", 1e6)

    def _local_ts_millis(self, depth):
        return self._ts_millis(depth, "local-timestamp-millis", 1000.0)

    def _date(self, depth):
        def make():
            v = dt.date(1970, 1, 1) + dt.timedelta(days=self.rng.randint(-700_000, 2_900_000))
            return v, v.isoformat()

        return {"type": "int", "logicalType": "date"}, make

    def _time_millis(self, depth, logical="time-millis", base="int"):
        def make():
            micro = (
                self.rng.randint(0, 999) * 1000 if base == "int" else self.rng.randint(0, 10**6 - 1)
            )
            v = dt.time(
                self.rng.randint(0, 23), self.rng.randint(0, 59), self.rng.randint(0, 59), micro
            )
            return v, v.isoformat()

        return {"type": base, "logicalType": logical}, make

    def _time_micros(self, depth):
        return self._time_millis(depth, "time-micros", "long")

    def _uuid(self, depth):
        def make():
            v = uuid.UUID(int=self.rng.getrandbits(128))
            return v, str(v)

        return {"type": "string", "logicalType": "uuid"}, make

    def _decimal_bytes(self, depth, fixed=False):
        scale = self.rng.randint(0, 6)
        schema = {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": scale}
        if fixed:
            schema = {**schema, "type": "fixed", "name": self.name(), "size": 10}

        def make():
            v = decimal.Decimal(self.rng.randint(-(10**19) + 1, 10**19 - 1)).scaleb(-scale)
            return v, float(v)

        return schema, make

    def _decimal_fixed(self, depth):
        return self._decimal_bytes(depth, fixed=True)

    def _enum(self, depth):
        symbols = [f"S{i}" for i in range(self.rng.randint(1, 5))]
        return {"type": "enum", "name": self.name(), "symbols": symbols}, lambda: (
            v := self.rng.choice(symbols),
            v,
        )

    def _fixed(self, depth):
        size = self.rng.randint(0, 6)
        return {"type": "fixed", "name": self.name(), "size": size}, lambda: (
            self.rng.randbytes(size),
            FIXED,
        )

    def _record(self, depth):
        fields = [(f"f{i}", *self.make(depth + 1)) for i in range(self.rng.randint(0, 6))]
        if self.rng.random() < 0.5:  # a run of plain doubles (read by one struct call)
            fields += [(f"d{i}", *self._double(depth)) for i in range(self.rng.randint(2, 5))]
            self.rng.shuffle(fields)
        name = self.name()
        schema = {
            "type": "record",
            "name": name,
            "fields": [{"name": n, "type": s} for n, s, _ in fields],
        }
        uses = iter([schema])  # a second use of the type refers to it by name

        def make():
            pairs = [(n, m()) for n, _, m in fields]
            return {n: w for n, (w, _) in pairs}, {n: e for n, (_, e) in pairs}

        return _Named(uses, name), make

    def _array(self, depth):
        items, make_item = self.make(depth + 1)

        def make():
            pairs = [make_item() for _ in range(self.rng.randint(0, 4))]
            return [w for w, _ in pairs], [e for _, e in pairs]

        return {"type": "array", "items": items}, make

    def _map(self, depth):
        values, make_value = self.make(depth + 1)

        def make():
            pairs = {f"k{i}": make_value() for i in range(self.rng.randint(0, 4))}
            return {k: w for k, (w, _) in pairs.items()}, {k: e for k, (_, e) in pairs.items()}

        return {"type": "map", "values": values}, make

    def _union(self, depth):
        """Branches of different kinds (as Avro requires), null among them or not."""
        pool = ["null", "boolean", "long", "double", "string", "bytes", "record", "array"]
        pool += ["enum", "fixed", "ts-millis", "map"]
        chosen, branches = [], []
        for kind in self.rng.sample(pool, self.rng.randint(1, 4)):
            if any({kind, other} in _AMBIGUOUS for other in chosen):
                continue
            if kind in ("array", "map") and depth >= 2:
                continue
            branches.append(getattr(self, "_" + kind.replace("-", "_"))(depth + 1))
            chosen.append(kind)

        def make():
            i = self.rng.randrange(len(branches))
            written, expected = branches[i][1]()
            if chosen[i] in ("record", "array", "map", "bytes", "fixed", "enum"):
                return _Tagged(i, written), expected
            return written, expected

        return [s for s, _ in branches], make

    def _recursive(self, depth):
        """A linked list: a record whose ``next`` is null or itself."""
        name = self.name()
        _, make_value = self._long(depth)
        schema = {
            "type": "record",
            "name": name,
            "fields": [{"name": "v", "type": "long"}, {"name": "next", "type": ["null", name]}],
        }

        def make():
            written = expected = None
            for _ in range(self.rng.randint(1, 4)):
                w, e = make_value()
                written, expected = {"v": w, "next": written}, {"v": e, "next": expected}
            return written, expected

        return schema, make


#: branches a union may not hold together here: Avro forbids two of one type (a timestamp is a
#: long), and fastavro's writer, given an untagged value, takes the first branch it fits
_AMBIGUOUS = [
    {a, b}
    for a, b in [
        ("long", "ts-millis"),
        ("long", "double"),
        ("ts-millis", "double"),
        ("boolean", "long"),
        ("boolean", "double"),
        ("boolean", "ts-millis"),
        ("record", "map"),
        ("bytes", "fixed"),
    ]
]


class _Named:
    """A named type: its definition where it is first written, its name after."""

    def __init__(self, uses, name):
        self.uses, self.name = uses, name


class _Tagged:
    """A datum for a given union branch (written as fastavro's ``(name, value)`` where it must
    be, else the value itself)."""

    def __init__(self, branch, value):
        self.branch, self.value = branch, value


def _resolve(schema):
    """The schema with every :class:`_Named` as its definition the first time, its name after."""
    if isinstance(schema, _Named):
        definition = next(schema.uses, None)
        return schema.name if definition is None else _resolve(definition)
    if isinstance(schema, list):
        return [_resolve(s) for s in schema]
    if isinstance(schema, dict):
        return {
            k: _resolve(v) if k in ("type", "items", "values", "fields") else v
            for k, v in schema.items()
        }
    if isinstance(schema, tuple | list):
        return [_resolve(s) for s in schema]
    return schema


def _fields(fields):
    return [{**f, "type": _resolve(f["type"])} for f in fields]


def _untag(value, schema, named):
    """The datum fastavro writes: a union branch that is named given as (name, value)."""
    if isinstance(value, _Tagged):
        branch = schema[value.branch]
        inner = _untag(value.value, branch, named)
        if isinstance(branch, dict) and "name" in branch:
            return (branch["name"], inner)
        if isinstance(branch, str) and branch in named:
            return (branch, inner)
        return inner
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):  # an untagged union value: the writer finds the branch
        return value
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record" and isinstance(value, dict):
            return {f["name"]: _untag(value[f["name"]], f["type"], named) for f in schema["fields"]}
        if kind == "array":
            return [_untag(v, schema["items"], named) for v in value]
        if kind == "map":
            return {k: _untag(v, schema["values"], named) for k, v in value.items()}
    return value


def _case(seed: int):
    rng = random.Random(seed)
    schemas = Schemas(rng)
    shape, make = schemas._record(0)
    schema = _resolve(shape)
    named: dict = {}
    parsed = parse_schema(schema, named_schemas=named)
    return rng, schema, parsed, named, make


def _write(parsed, named, datum) -> bytes:
    out = io.BytesIO()
    out.write(HEADER)
    schemaless_writer(out, parsed, _untag(datum, parsed, named))
    return out.getvalue()


@pytest.mark.parametrize("seed", range(150))
def test_random_schemas_and_data_read_back_as_fastavro_wrote_them_converted(seed):
    rng, schema, parsed, named, make = _case(seed)
    read = compile_reader(schema)
    for _ in range(12):
        written, expected = make()
        raw = _write(parsed, named, written)
        assert repr(read(raw)) == repr(expected), schema
        assert repr(read(raw + b"\x00\x01")) == repr(expected)  # (bytes after it ignored)
        cut = rng.randrange(5, len(raw)) if len(raw) > 5 else None
        if cut is not None:  # cut short anywhere inside the datum: refused, not read past
            with pytest.raises(REFUSALS):
                read(raw[:cut])


@pytest.mark.parametrize("seed", range(60))
def test_changed_bytes_are_read_or_refused_never_looped_on(seed):
    rng, schema, parsed, named, make = _case(seed)
    read = compile_reader(schema)
    for _ in range(20):
        raw = bytearray(_write(parsed, named, make()[0]))
        for _ in range(rng.randint(1, 3)):
            if len(raw) > 5:
                raw[rng.randrange(5, len(raw))] = rng.randrange(256)
        try:
            read(bytes(raw))
        except REFUSALS:
            pass


def test_blocks_with_a_byte_size_and_several_blocks_are_read():
    """Avro lets a writer split an array or a map into blocks, a negative count followed by the
    block's size in bytes (fastavro writes one block): every block is read."""
    read = compile_reader(
        {
            "type": "record",
            "name": "B",
            "fields": [
                {"name": "a", "type": {"type": "array", "items": "long"}},
                {"name": "m", "type": {"type": "map", "values": "string"}},
            ],
        }
    )
    # a: a block of -2 items (2, size 2 bytes): 1, 2; then a block of 1: 3; then 0
    array = b"\x03\x04\x02\x04" + b"\x02\x06" + b"\x00"
    # m: a block of 1: "k" -> "v"; then 0
    mapping = b"\x02\x02k\x02v\x00"
    assert read(HEADER + array + mapping) == {"a": [1, 2, 3], "m": {"k": "v"}}


@pytest.mark.parametrize(
    ("schema", "body", "error"),
    [
        ("string", b"\x7f", "ends inside a string"),  # a length of -64
        ("string", b"\x10ab", "ends inside a string"),  # 8 bytes said, 2 given
        ({"type": "array", "items": "long"}, b"\xfe\xff\xff\xff\x0f", "items"),  # 2**31 items
        ({"type": "array", "items": "null"}, b"\xfe\xff\xff\xff\x0f", "items"),  # of nothing
        ({"type": "enum", "name": "E", "symbols": ["A"]}, b"\x02", "enum index 1"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, b"\x01", "enum index -1"),
        (["null", "long"], b"\x04", "union branch 2"),
        ("long", b"\xff" * 11, "longer than 10 bytes"),
        ("string", b"\x04\xff\xfe", "can't decode"),
    ],
)
def test_a_body_out_of_range_is_refused_with_the_reason(schema, body, error):
    read = compile_reader(
        {"type": "record", "name": "R", "fields": [{"name": "v", "type": schema}]}
    )
    with pytest.raises(REFUSALS, match=error):
        read(HEADER + body)


def test_an_array_of_nulls_may_hold_many_items_up_to_the_cap():
    read = compile_reader(
        {
            "type": "record",
            "name": "N",
            "fields": [{"name": "v", "type": {"type": "array", "items": "null"}}],
        }
    )
    count = MAX_EMPTY_ITEMS
    body = b""
    n = count << 1
    while n > 127:
        body += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    body += bytes([n]) + b"\x00"
    assert read(HEADER + body) == {"v": [None] * count}


def test_a_schema_that_is_not_a_record_reads_its_value():
    assert compile_reader("string")(HEADER + b"\x02x") == "x"
    assert compile_reader(["null", "long"])(HEADER + b"\x02\x04") == 2
