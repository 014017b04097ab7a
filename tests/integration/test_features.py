"""Declared features, the same offline: what the stream writes to its enriched topic equals, to
the bit, what ``faust -A app features`` computes from the same messages (one partition, three,
and through ``kill -9``s during the stream)."""

import random
import tomllib

import orjson
import pytest

from app.feature_spec import parse
from app.model_spec import parse_spec
from tests.integration.harness import consume_all, run, wait_for
from tests.integration.test_forgetting import live_keys

pytestmark = pytest.mark.integration

LR = parse_spec("StandardScaler | LogisticRegression")

#: every window kind and aggregation, with expiry short enough that keys are forgotten
CONFIG = """
window_expires = 900
key_cache = 6

[windows]
last_5m = { kind = "sliding", size = 300 }
tumbling_10m = { kind = "tumbling", size = 600 }
hopping_10m = { kind = "hopping", size = 600, step = 120 }
ever = { kind = "lifetime" }

[[aggregate]]
fields = ["amount", "n"]
aggregations = ["count", "sum", "mean", "min", "max", "std"]
windows = ["last_5m", "tumbling_10m", "hopping_10m", "ever"]

[[aggregate]]
fields = ["merchant"]
aggregations = ["distinct"]
windows = ["last_5m", "ever"]

[[aggregate]]
fields = ["amount"]
aggregations = ["ewm_mean"]
half_life = 300
"""


def events(n: int, seed: int = 3, keys: int = 24) -> list[dict]:
    """Keyed events with late ones, too-late ones, missing fields, strings, keys idle longer
    than expires (900 s: forgotten) but never twice that (kept in the store: see docs/features.md
    on the one case where the stream and the offline command can differ), and keys busy for a
    minute once, then never again (deleted from the store once idle twice expires: the sweep)."""
    rng = random.Random(seed)
    rows, ts = [], 1_767_225_600.0
    for i in range(n):
        ts += rng.expovariate(1 / 4.0)
        if i % 400 < 40:  # busy for ~160 s, then idle for ~1,440 s
            key = f"sleepy{rng.randrange(3)}"
        elif 200 <= i % 400 < 215:
            key = f"once{i // 400}"
        else:
            key = f"c{rng.randrange(keys)}"
        t = ts - rng.uniform(0, 400) if rng.random() < 0.1 else ts  # late within expires
        if key[0] == "c" and rng.random() < 0.01:
            t = ts - 5000  # too late: no windows, counted
        x = {"merchant": rng.choice("abcdefg"), "n": rng.randrange(5)}
        if rng.random() < 0.85:
            x["amount"] = round(rng.lognormvariate(3, 1), 2)
        rows.append({"id": f"f{i}", "key": key, "ts": round(t, 3), "x": x, "y": rng.random() < 0.3})
    return rows


def parse_spec_of(config: str):
    table = tomllib.loads(config)
    return parse(table["windows"], table["aggregate"], "test")


def start(pipeline_factory, tmp_path, partitions: int, **settings):
    config = tmp_path / "streamlearn.toml"
    config.write_text(CONFIG)
    pipeline = pipeline_factory(
        partitions=partitions, model=LR.text, config=str(config), **settings
    )
    pipeline.enriched = f"{pipeline.id}-enriched"
    pipeline.settings["ENRICHED_TOPIC"] = pipeline.enriched
    return pipeline, pipeline.start_worker()


def enriched_x(pipeline, n: int) -> dict[str, bytes]:
    """Each event's x as the stream wrote it (copies written again after a kill: the same)."""

    def read():
        out: dict[str, set[bytes]] = {}
        for record in run(consume_all(pipeline.bootstrap, pipeline.enriched)):
            event = orjson.loads(record.value)
            out.setdefault(event["id"], set()).add(orjson.dumps(event["x"]))
        return out if len(out) == n else None

    written = wait_for(read, timeout=180, what=f"{n} events in the enriched topic")
    copies = {i: xs for i, xs in written.items() if len(xs) > 1}
    assert not copies, f"an event written twice with different features: {list(copies)[:3]}"
    return {i: next(iter(xs)) for i, xs in written.items()}


def offline(pipeline, tmp_path, source: str) -> tuple[dict[str, bytes], str]:
    out = tmp_path / "features.jsonl"
    done = pipeline.command("features", source, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return {r["id"]: orjson.dumps(r["x"]) for r in rows}, done.stderr


def assert_same(stream: dict[str, bytes], computed: dict[str, bytes]) -> None:
    assert stream.keys() == computed.keys()
    different = [i for i in stream if stream[i] != computed[i]]
    assert not different, (different[:3], stream[different[0]], computed[different[0]])


def write_file(tmp_path, rows) -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("partitions", [1, 3])
def test_the_offline_command_equals_the_enriched_topic(pipeline_factory, tmp_path, partitions):
    pipeline, worker = start(pipeline_factory, tmp_path, partitions)
    rows = events(1500)
    values = [orjson.dumps(r) for r in rows]
    pipeline.send(pipeline.events, values, [r["key"].encode() for r in rows])
    stream = enriched_x(pipeline, len(rows))
    computed, summary = offline(pipeline, tmp_path, write_file(tmp_path, rows))
    assert_same(stream, computed)
    too_late = sum(1 for x in stream.values() if b"count_ever" not in x)
    assert too_late > 0 and f"too_late: {too_late}" in summary
    assert worker.stats()["counters"]["too_late"] == too_late
    # the features every kind of window gives, present where they must be
    sample = orjson.loads(stream[rows[-1]["id"]])
    assert {"count_last_5m", "n_std_hopping_10m", "merchant_distinct_ever"} <= sample.keys()
    # the web view: a key's features at its newest event, as that event got them
    names = set(parse_spec_of(CONFIG).names)
    checked = 0
    for key in ("c0", "c1", "c2", "c3", "c4"):
        of_key = [r for r in rows if r["key"] == key]
        if of_key[-1]["ts"] < max(r["ts"] for r in of_key):
            continue  # its last event was late: the view is at a later time
        x = orjson.loads(stream[of_key[-1]["id"]])
        view = worker.get(f"/features/{key}/")
        assert view["features"] == {k: v for k, v in x.items() if k in names}, key
        checked += 1
    assert checked >= 2
    if partitions > 1:  # the topic itself as input: partition by partition
        from_topic, _ = offline(pipeline, tmp_path, f"kafka:{pipeline.events}")
        assert_same(stream, from_topic)


@pytest.mark.slow
def test_the_offline_command_equals_the_enriched_topic_after_kills(pipeline_factory, tmp_path):
    from tests.integration.test_faults import kill_after_a_checkpoint

    rng = random.Random(11)
    pipeline, worker = start(pipeline_factory, tmp_path, 2, checkpoint_every=300)
    rows = events(4000, seed=9)
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(r) for r in rows], [r["key"].encode() for r in rows], 400
    )
    for kill in range(3):
        threshold = rng.randint(kill * 1000 + 200, (kill + 1) * 1000)
        wait_for(
            lambda t=threshold: sum(e["n_learned"] for e in worker.models()) >= t,
            what=f"{threshold} learned before kill {kill + 1}",
        )
        kill_after_a_checkpoint(worker)
    sender.join()
    stream = enriched_x(pipeline, len(rows))
    computed, _ = offline(pipeline, tmp_path, write_file(tmp_path, rows))
    assert_same(stream, computed)
    # the keys seen once were deleted from the store as the stream went on, through the kills
    # (the sweep: they had left the 6-key cache while recent). The tombstones in the changelog,
    # not keys_forgotten: a kill right after a checkpoint can lose its count. (Of the 10, busy
    # from 800 s to 15,200 s of a 16,000 s stream, 9 are idle for 1,800 s before it ends; 7 and 8
    # were deleted in two local runs, 4 with the sweep disabled: a pass and the next checkpoint
    # come a little later.)
    once = {r["key"] for r in rows if r["key"].startswith("once")}
    assert len(once - live_keys(pipeline)) >= 5
