"""The offline features: the stream's checks and features per message, the summary, and the two
output formats holding every value exactly."""

import asyncio
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from app.commands.features import _features, write_jsonl, write_parquet
from app.config import Config
from app.contracts.mapping import Origin
from app.features.offline import OfflineFeatures
from app.settings import Settings

SPEC = {
    "windows_map": {"w": {"kind": "tumbling", "size": 60}},
    "aggregate_list": [
        {"fields": ["a"], "aggregations": ["count", "max", "std"], "windows": ["w"]}
    ],
}


def origin(i: int) -> Origin:
    return Origin("events", 0, i, None, 0)


def message(i: int, key="k", **x) -> bytes:
    return orjson.dumps({"id": f"e{i}", "key": key, "ts": 100.0 + i, "x": x, "y": i % 2 == 0})


def test_rows_carry_the_declared_features_and_refusals_are_counted_with_reasons():
    offline = OfflineFeatures(Config.build(Settings(**SPEC)))
    rows = [
        offline.take(message(0, a=1.5, m="x"), origin(0)),
        offline.take(b"{not json", origin(1)),
        offline.take(message(2, a=2.5), origin(2)),
        offline.take(message(3, key=None, a=9.0), origin(3)),
    ]
    assert rows[1] is None
    assert rows[0]["x"] == {"a": 1.5, "m=x": 1, "count_w": 1, "a_max_w": 1.5, "a_std_w": 0.0}
    assert rows[2]["x"]["count_w"] == 2 and rows[2]["x"]["secs_since_last"] == 2.0
    assert rows[2]["x"]["a_std_w"] == 0.7071067811865476
    assert rows[3] == {"id": "e3", "key": None, "ts": 103.0, "x": {"a": 9.0}, "y": False}
    assert (offline.n_read, offline.n_rows, dict(offline.counts)) == (4, 3, {"dead_letters": 1})
    summary = offline.summary()
    assert summary.startswith("4 messages read, 3 rows written, 1 key\n  dead_letters: 1\n")
    assert "events[0]@1: not JSON" in summary


class _Command:
    """What the features command needs of Faust's AppCommand."""

    def say(self, text: str) -> None:
        print(text)


def features_command(source: str, capsys) -> tuple[list[dict], str]:
    """Run ``faust -A app features SOURCE --out out.jsonl`` in-process: rows, stderr."""
    asyncio.run(_features(_Command(), source, "out.jsonl", Config.build(Settings())))
    rows = [orjson.loads(line) for line in Path("out.jsonl").read_bytes().splitlines()]
    return rows, capsys.readouterr().err


def test_the_command_names_a_refused_line_of_a_file_by_the_file_and_its_line(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    lines = [message(0, a=1.0), message(1, a=2.0), b"", message(3, a=3.0), b"  ", b"{not json"]
    Path("events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    rows, summary = features_command("events.jsonl", capsys)
    assert [row["id"] for row in rows] == ["e0", "e1", "e3"]
    # the file's name as given and the line's number from 1 (blank lines count), not
    # events[0]@5, which reads as a topic's partition and offset
    assert "\n  dead_letters: 1\n    events.jsonl line 6: not JSON" in summary, summary
    assert "@" not in summary
    Path("in").mkdir()
    Path("in", "events.jsonl").write_bytes(b"{not json\n")
    _, summary = features_command("./in/events.jsonl", capsys)
    assert "    ./in/events.jsonl line 1: not JSON" in summary, summary


async def _rows(rows):
    for row in rows:
        yield row


def test_jsonl_and_parquet_keep_every_value(tmp_path):
    rows = [
        {"id": "a", "key": "k", "ts": 1.5, "x": {"f": 0.1 + 0.2, "n": 3, "b": True}, "y": 1},
        {"id": "b", "key": None, "ts": 2.0, "x": {"f": 1e-300, "n": 2.5, "s=v": 1}},
    ]
    out = tmp_path / "rows.jsonl"
    assert asyncio.run(write_jsonl(_rows(rows), out)) == 2
    assert [orjson.loads(line) for line in out.read_bytes().splitlines()] == rows
    parquet = tmp_path / "rows.parquet"
    assert asyncio.run(write_parquet(_rows(rows), parquet)) == 2
    table = pq.read_table(parquet).to_pylist()
    assert [r["x.f"] for r in table] == [0.1 + 0.2, 1e-300]  # float64: the same bits
    assert [r["x.n"] for r in table] == [3.0, 2.5]
    assert [r["x.b"] for r in table] == [True, None]
    assert [r["x.s=v"] for r in table] == [None, 1]
    assert [(r["id"], r["key"], r["ts"], r["y"]) for r in table] == [
        ("a", "k", 1.5, 1),
        ("b", None, 2.0, None),
    ]
    assert not list(tmp_path.glob(".rows*"))  # no temporary file left
