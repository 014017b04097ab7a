"""Declared features, the same offline: what the stream writes to its enriched topic equals, to
the bit, what ``faust -A app features`` computes from the same messages (one partition, three,
and through ``kill -9``s during the stream)."""

import random
import time
import tomllib

import orjson
import pytest

from app.features.spec import parse
from app.models.spec import parse_spec
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


def tail(rows: list[dict], until: float, partitions: int) -> tuple[list[dict], list[int]]:
    """Events after ``rows``, of one key per partition (``tail0`` in partition 0, ...), every
    60 s of event time up to ``until``: each shard's event time moves on to ``until``. And the
    partition of each."""
    out: list[dict] = []
    ts = max(r["ts"] for r in rows)
    while ts < until:
        ts = min(ts + 60, until)
        for p in range(partitions):
            x = {"merchant": "a", "n": len(out) % 5, "amount": 10.0 + p}
            out.append({"id": f"tail{p}@{ts}", "key": f"tail{p}", "ts": ts, "x": x, "y": p == 0})
    return out, [int(r["key"][4:]) for r in out]


def send(pipeline, rows: list[dict], partitions: list[int]) -> None:
    pipeline.send(
        pipeline.events,
        [orjson.dumps(r) for r in rows],
        [r["key"].encode() for r in rows],
        partitions,
    )


def checkpointed(pipeline) -> None:
    """Wait until each shard has a checkpoint after every event of its partition sent so far."""
    last: dict[int, int] = {}
    for record in run(consume_all(pipeline.bootstrap, pipeline.events)):
        last[record.partition] = record.offset
    wait_for(
        lambda: all(
            (c := pipeline.last_checkpoint(s)) and c["origins"].get(f"e{s}", -1) >= offset
            for s, offset in last.items()
        ),
        what=f"a checkpoint of each shard up to its last event {last}",
    )


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
    # The sweep (tables/windows.py) deletes a key idle for 2 E of its shard's event time that
    # left the 6-key cache while recent: a pass, which starts at a checkpoint once the shard's
    # time moved E / 4 since the last one, finds it, and the checkpoint after deletes it (a
    # tombstone in the changelog). How many it deletes by the stream's end depends on timing: a
    # kill right after a checkpoint loses what that checkpoint found, and no checkpoint follows
    # the last one (0 to 8 of the 10 keys busy once in runs; once9 is not idle for 2 E yet). So
    # event time moves on past every idle key, two checkpoints follow, and the test waits until
    # the idle keys, and only they, are deleted.
    # First the checkpoint after the stream's last event: its cache trim drops the keys idle
    # since then (once9, sleepy0-2) while too recent to forget, so only the sweep can delete
    # them (without it the test fails: in a run, they and 6 other keys busy once were left).
    checkpointed(pipeline)
    config = tomllib.loads(CONFIG)
    # (the worker trims the cache right after the checkpoint is in Kafka: the sum of its shards'
    # caches falls to key_cache each, or below)
    wait_for(
        lambda: sum(w.stats().get("feature_keys", 10**9) for w in pipeline.workers if w.alive)
        <= 2 * config["key_cache"],
        what="each shard's key cache trimmed after the checkpoint",
    )
    expires = config["window_expires"]
    newest: dict[str, float] = {}
    for r in rows:
        newest[r["key"]] = max(r["ts"], newest.get(r["key"], r["ts"]))
    once = {key for key in newest if key.startswith("once")}
    # Each shard's time moves on to `until`, then `until + 1`: the pass at the checkpoint of
    # `until`, or one started less than E / 4 before (SWEEP_AFTER), finds the keys idle for
    # 2 E + E / 4 by then; keys idle less than 2 E at `until + 1` are kept. The stream's times
    # are fixed (seed 9): none in between, 13 idle.
    until = max(newest[key] for key in once) + 2.25 * expires + 30
    idle = {key for key, ts in newest.items() if ts < until - 2.25 * expires}
    kept = {key for key, ts in newest.items() if ts >= until + 1 - 2 * expires}
    assert idle | kept == newest.keys(), sorted(newest.keys() - idle - kept)
    assert idle == once | {"sleepy0", "sleepy1", "sleepy2"}, sorted(idle)
    more, partitions = tail(rows, until, 2)
    send(pipeline, more, partitions)
    rows += more
    checkpointed(pipeline)  # its pass (or one less than E / 4 before) found the idle keys
    last = tail(rows, until + 1, 2)[0]  # the next checkpoint deletes them
    send(pipeline, last, [0, 1])
    rows += last
    kept |= {"tail0", "tail1"}
    deadline = time.monotonic() + 90
    while (live := live_keys(pipeline)) != kept and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live == kept, f"idle, still stored: {sorted(live - kept)}; gone: {sorted(kept - live)}"
    stream = enriched_x(pipeline, len(rows))
    computed, _ = offline(pipeline, tmp_path, write_file(tmp_path, rows))
    assert_same(stream, computed)
