"""Instructions per event of the engine's hot path against River's plain loop, by callgrind.

    python bench/instructions.py [--events 5000] [--keys 0] [--config FILE] [--peers]
                                                                            (needs valgrind)
    python bench/instructions.py --per-aggregation [--keys 1000] [--events 5000] [--wall-clock]

Wall-clock rates on a shared 2-core VM swing by 2x within minutes; instruction counts do not.
This runs, in-process and without Kafka, (1) River's plain loop over the JSON rows (the limit of
bench/run.py) and (2) the batch engine's ``_take`` over the same rows as consumer records
(validation, windows when ``--keys`` > 0, one-hot, predict/score/learn, prediction messages into
record batches), each under ``valgrind --tool=callgrind`` with instrumentation switched on only
around the measured loop, after a warm-up. It prints instructions per event of both and their
ratio: an upper bound of what the worker can reach (it leaves out Kafka fetches, checkpoints and
cache misses), and a noise-free way to tell whether a change to the hot path made it cheaper.
``--config FILE`` runs the engine with that config file (STREAMLEARN_CONFIG), e.g. ``--keys 1000
--config bench/rich_features.toml`` (the events then carry the rich row's "category" field too,
in both loops).

``--peers`` also counts, on the same rows, the peers' per-event work alone
(``bench/peers/common.py``'s ``Learner.process``: decode, predict, Accuracy, learn, the
prediction as JSON; what every peer's loop calls per event) and the Bytewax peer's dataflow
in-process (``bench/peers/bytewax_inproc.py``, with the peers' Python: its source messages,
``map`` and sink, without Kafka), so that the engine's path can be set against Bytewax's.

``--per-aggregation`` counts the cost of each aggregation kind per event: instructions of
:meth:`app.features.recipe.Recipe.step` alone (in-process, no Kafka, no model), the engine's per-key
call, over keyed events (``--keys``, default 1000, as bench/run.py's keyed rows; ``ts`` = the
event's index, so a key gets one event every ``keys`` seconds: fewer keys, denser windows), after
``--warm-up`` events (default 10,000: past the 7,200 s of WINDOW_EXPIRES, so states are as full
as they get), for today's fixed recipe, one spec per aggregation on one tumbling window (a
numeric one on field "0", ``distinct`` on the int field "category", ``ewm_mean`` alone), count +
sum on each window kind, and bench/rich_features.toml. Beside it: what the loop costs with a
no-op step (the "net" column is without it), ``Recipe.copy`` of a key's state (what the engine
does the first time a key changes after a checkpoint began) and the state's JSON size (what the
checkpoint writes per changed key). Without valgrind (or with ``--wall-clock``) it times the same
loop instead: nanoseconds per event, the median of ``--runs`` runs, noisy on shared cores, and
says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 2000
PEERS = ROOT / "bench" / "peers"
#: the peers' Python (bench/peers/setup.sh), for the Bytewax dataflow in-process
PEERS_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"


def measure(mode: str, events: int, keys: int, *extra: str) -> int:
    """Instructions callgrind counted in the measured loop of one child run."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        if mode == "bytewax":  # (the peers' Python, on the same rows written to a file)
            rows = Path(tmp) / "rows"
            workload = workloads.make(WARM_UP + events, keys=keys)
            rows.write_bytes(
                b"\n".join(k + b" " + r for k, r in zip(workload.keys, workload.rows, strict=True))
            )
            script = ROOT / "bench" / "peers" / "bytewax_inproc.py"
            command = [str(PEERS_PYTHON), str(script), str(rows), "--warm-up", str(WARM_UP)]
            command.append("--callgrind")
        else:
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--events",
                str(events),
                "--keys",
                str(keys),
                *extra,
            ]
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
            + command,
            check=True,
            capture_output=True,
            # (a fixed hash seed: the same dict and set layouts, run after run)
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"},
        )
        totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        return int(totals.group(1))


def child(mode: str, events: int, keys: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import ConsumerRecord

    from agents.engine import PUBLISH_EVERY
    from app import parts
    from app.kafka.outbox import Outbox

    engine = parts.engine  # the worker's engine, as app/worker.py builds it

    # (a config file: declared features, which may count the rich row's "category")
    categories = workloads.CATEGORIES if os.environ.get("STREAMLEARN_CONFIG") else 0
    workload = workloads.make(WARM_UP + events, keys=keys, categories=categories)
    now_ms = int(time.time() * 1000)
    records = [
        ConsumerRecord("events", 0, i, now_ms, 0, key, value, None, len(value), len(key), ())
        for i, (key, value) in enumerate(zip(workload.keys, workload.rows, strict=True))
    ]

    async def run() -> None:
        engine.outbox = Outbox(AIOKafkaProducer(bootstrap_servers="127.0.0.1:1"))  # never sends
        for topic in (engine.source, *OUTPUT_TOPICS, engine.join_topic):
            engine.partitions[topic] = 1
        engine.keeper.own({0})  # fresh models (the store is in memory and empty)

        async def take(rows: list) -> None:
            for start in range(0, len(rows), PUBLISH_EVERY):
                engine.take(0, rows[start : start + PUBLISH_EVERY])
                engine.outbox.slots = {}  # drop the batches: nothing is sent

        learner = peer_learner(len(records)) if mode == "peer" else None

        async def loop(rows: list) -> None:
            if mode == "limit":  # bench/run.py's limit itself, on the same rows
                workloads.river_loop(Workload("", [r.value for r in rows], [], False), "lr")
            elif learner is not None:  # the peers' per-event work (a Kafka timestamp each)
                process = learner.process
                for r in rows:
                    process(r.value, r.timestamp)
            else:
                await take(rows)

        await loop(records[:WARM_UP])
        control("-i", "on")
        await loop(records[WARM_UP:])
        control("-i", "off")

    asyncio.run(run())


def peer_learner(events: int):
    """bench/peers/common.py's Learner for [lr] (the peers' module, loaded from its file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_peers_common", PEERS / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common.Learner("lr", events)


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)


# --per-aggregation: Recipe.step alone

#: the windows of the per-aggregation specs (streamlearn's default sizes; sliding: 10 minutes)
KIND_WINDOWS = {
    "tumbling": {"tumbling_1h": {"kind": "tumbling", "size": 3600}},
    "hopping": {"hopping_1h": {"kind": "hopping", "size": 3600, "step": 600}},
    "sliding": {"last_10m": {"kind": "sliding", "size": 600}},
    "lifetime": {"lifetime": {"kind": "lifetime"}},
}


def _declared(windows: dict, *aggregates: dict):
    from app.features.spec import parse

    return workloads.declared_recipe(parse(windows, list(aggregates), "bench", 7200.0))


def recipes() -> dict[str, Callable[[], object]]:
    """The measured recipes by label: a function building each (None: the no-op step)."""
    from app.features.recipe import Recipe
    from app.features.spec import AGGREGATIONS

    out: dict[str, Callable[[], object]] = {
        "loop alone (a no-op step)": lambda: None,
        "fixed: today's default, feature 0 (the bench)": workloads.fixed_recipe,
        "fixed: today's default, every numeric feature": lambda: Recipe.build(
            None, window=3600.0, hop_window=3600.0, hop_step=600.0, expires=7200.0
        ),
    }
    tumbling = KIND_WINDOWS["tumbling"]
    for aggregation in AGGREGATIONS:
        if aggregation == "ewm_mean":
            entry = {"fields": ["0"], "aggregations": ["ewm_mean"], "half_life": 600}
            out["ewm_mean of 0 (half life 10m, no window)"] = partial(_declared, {}, entry)
            continue
        field = workloads.CATEGORY if aggregation == "distinct" else "0"
        entry = {"fields": [field], "aggregations": [aggregation], "windows": list(tumbling)}
        of = "" if aggregation == "count" else f" of {field}"
        label = f"{aggregation}{of}, tumbling 1h"
        out[label] = partial(_declared, tumbling, entry)
    for kind, windows in KIND_WINDOWS.items():
        entry = {"fields": ["0"], "aggregations": ["count", "sum"], "windows": list(windows)}
        out[f"count + sum of 0, {kind} window"] = partial(_declared, windows, entry)
    out["rich: bench/rich_features.toml"] = lambda: workloads.declared_recipe(workloads.rich_spec())
    return out


def keyed_items(events: int, keys: int) -> list[tuple[str, float, dict]]:
    """``(key, ts, x)`` of the first ``events`` keyed rows (with "category"), each ``x`` a fresh
    dict (a step writes the features into it)."""
    import orjson

    workload = workloads.make(events, keys=keys, categories=workloads.CATEGORIES)
    out = []
    for raw in workload.rows:
        event = orjson.loads(raw)
        out.append((event["key"], event["ts"], event["x"]))
    return out


def _no_step(state: dict | None, ts: float, x: dict) -> tuple[dict | None, int]:
    return state, 0


def _no_copy(state: dict) -> dict:
    return state


def stepper(recipe) -> Callable:
    return recipe.step if recipe is not None else _no_step


def run_steps(step: Callable, items: list, states: dict) -> None:
    """The measured loop: each event through ``step`` with its key's state."""
    get = states.get
    for key, ts, x in items:
        state, _ = step(get(key), ts, x)
        states[key] = state


def recipe_child(label: str, what: str, events: int, keys: int, warm_up: int) -> None:
    """One callgrind child of --per-aggregation: instrumentation on around ``events`` steps
    (``what`` = "step") or around ``Recipe.copy`` of every key's state after them ("copy")."""
    recipe = recipes()[label]()
    items = keyed_items(warm_up + events, keys)
    states: dict = {}
    step = stepper(recipe)
    run_steps(step, items[:warm_up], states)
    if what == "step":
        control("-i", "on")
        run_steps(step, items[warm_up:], states)
        control("-i", "off")
        return
    run_steps(step, items[warm_up:], states)
    held = list(states.values())
    copy = recipe.copy if recipe is not None else _no_copy
    control("-i", "on")
    for state in held:
        copy(state)
    control("-i", "off")


def describe(recipe, events: int, keys: int, warm_up: int) -> tuple[int, float]:
    """Features a step adds to an event (the last one), and the mean JSON bytes of a key's
    state at the end (what a checkpoint writes per changed key, twice: now and before)."""
    import orjson

    if recipe is None:
        return 0, 0.0
    items = keyed_items(warm_up + events, keys)
    width = len(items[-1][2])
    states: dict = {}
    run_steps(recipe.step, items, states)
    added = len(items[-1][2]) - width
    return added, statistics.fmean(len(orjson.dumps(s)) for s in states.values())


def wall_clock(recipe, events: int, keys: int, warm_up: int, runs: int) -> float:
    """Median nanoseconds per event of the measured loop over ``runs`` runs (each on fresh
    rows and states, after the warm-up)."""
    step = stepper(recipe)
    times = []
    for _ in range(runs):
        items = keyed_items(warm_up + events, keys)
        states: dict = {}
        run_steps(step, items[:warm_up], states)
        start = time.perf_counter_ns()
        run_steps(step, items[warm_up:], states)
        times.append((time.perf_counter_ns() - start) / events)
    return statistics.median(times)


def per_aggregation(events: int, keys: int, warm_up: int, runs: int, use_wall: bool) -> None:
    """Print the per-aggregation table (see the module's docstring)."""
    callgrind = not use_wall and shutil.which("valgrind") is not None
    unit = "instructions/event (callgrind)" if callgrind else "ns/event (WALL CLOCK)"
    print(
        f"Recipe.step alone, in-process (no Kafka, no model): {events:,} keyed events after "
        f"{warm_up:,}, {keys:,} keys (one event per key every {keys:,} s of event time); "
        f"{unit}",
        flush=True,
    )
    if not callgrind:
        why = "--wall-clock" if use_wall else "valgrind not found"
        print(
            f"  ({why}: wall-clock timing, the median of {runs} runs; noisy on shared cores, "
            "compare rows of one run only)",
            flush=True,
        )
    built = recipes()
    width = max(len(label) for label in built)
    cost_head = "instr/event" if callgrind else "ns/event"
    copy_head = "copy/key" if callgrind else ""
    print(
        f"{'recipe':<{width}} {'features':>8} {cost_head:>12} {'net':>10} {copy_head:>10} "
        f"{'state B/key':>11}",
        flush=True,
    )
    base = copy_base = None
    extra = ("--warm-up", str(warm_up))
    for label, build in built.items():
        recipe = build()
        added, state_bytes = describe(recipe, events, keys, warm_up)
        copied = ""
        if callgrind:
            cost = measure(f"recipe:step:{label}", events, keys, *extra) / events
            # (the loop's and callgrind_control's own instructions: a no-op copy's, taken off)
            copy_cost = measure(f"recipe:copy:{label}", events, keys, *extra) / keys
            if recipe is None:
                copy_base = copy_cost
            else:
                copied = f"{copy_cost - (copy_base or 0.0):,.0f}"
        else:
            cost = wall_clock(recipe, events, keys, warm_up, runs)
        if recipe is None:
            base = cost
        net = f"{cost - base:,.0f}" if recipe is not None and base is not None else "-"
        shown_bytes = f"{state_bytes:,.0f}" if recipe is not None else "-"
        print(
            f"{label:<{width}} {added:>8} {cost:>12,.0f} {net:>10} {copied:>10} {shown_bytes:>11}",
            flush=True,
        )
    print(
        "(net: without the loop's own cost, and callgrind_control's (a subprocess run with "
        "instrumentation on: a fixed cost, spread over the events); copy/key: instructions of "
        "Recipe.copy of one key's state, without the same loop's; state B/key: its JSON size, "
        "as the checkpoint writes it)"
        if callgrind
        else "(net: without the loop's own cost; state B/key: a key's state's JSON size, as the "
        "checkpoint writes it)"
    )


#: the engine's outputs (topic names of the settings below)
OUTPUT_TOPICS = ("predictions", "events-dlq")

sys.path.insert(0, str(ROOT))
# before anything reads the settings (bench.workloads imports the app's modules)
os.environ.update(
    STREAMLEARN_ID="instructions",
    STREAMLEARN_STORE="memory://",
    STREAMLEARN_CHECKPOINT_SECRET="bench",
    STREAMLEARN_WINDOW_FEATURES="0",  # as bench.workloads.WINDOW_FEATURES
    STREAMLEARN_MODEL="StandardScaler | LogisticRegression @ Accuracy",  # as MODELS["lr"]
)
from functools import partial  # noqa: E402

from bench import workloads  # noqa: E402
from bench.workloads import Workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument(
        "--keys",
        type=int,
        default=None,
        help="> 0: keyed events, with windows (default: 0; --per-aggregation: 1000)",
    )
    parser.add_argument(
        "--per-aggregation",
        action="store_true",
        help="instructions per event of Recipe.step alone, per aggregation and window kind",
    )
    parser.add_argument(
        "--warm-up", type=int, default=10_000, help="--per-aggregation: events before measuring"
    )
    parser.add_argument(
        "--wall-clock", action="store_true", help="--per-aggregation: time it, not callgrind"
    )
    parser.add_argument("--runs", type=int, default=5, help="--wall-clock: runs per recipe")
    parser.add_argument(
        "--config",
        type=Path,
        help="the engine's config file (STREAMLEARN_CONFIG), e.g. declared features",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also the peers' per-event work and Bytewax's dataflow in-process (no keys)",
    )
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.per_aggregation or (args.child or "").startswith("recipe:"):
        keys = args.keys or 1000
        if args.child:
            _, what, label = args.child.split(":", 2)
            recipe_child(label, what, args.events, keys, args.warm_up)
        else:
            per_aggregation(args.events, keys, args.warm_up, args.runs, args.wall_clock)
        return
    args.keys = args.keys or 0
    if args.child:
        child(args.child, args.events, args.keys)
        return
    if args.config is not None:  # (the children inherit it)
        os.environ["STREAMLEARN_CONFIG"] = str(args.config.resolve())
    per_event = {m: measure(m, args.events, args.keys) / args.events for m in ("limit", "engine")}
    config = f", config {args.config}" if args.config is not None else ""
    print(
        f"instructions per event ({args.events} events, keys={args.keys}{config}): "
        f"River plain loop {per_event['limit']:,.0f}, engine {per_event['engine']:,.0f}, "
        f"ratio {per_event['limit'] / per_event['engine']:.3f}",
        flush=True,
    )
    if args.peers:
        if args.config is not None or args.keys:
            raise SystemExit("--peers: the peers' work has no windows or declared features")
        if not PEERS_PYTHON.exists():
            subprocess.run(["bash", str(PEERS / "setup.sh")], check=True)
        for mode, what in (
            ("peer", "the peers' per-event work (Learner.process)"),
            ("bytewax", "Bytewax's dataflow in-process (source messages, map, sink; no Kafka)"),
        ):
            per_event[mode] = measure(mode, args.events, args.keys) / args.events
            print(
                f"  {what}: {per_event[mode]:,.0f} per event; engine / it "
                f"{per_event['engine'] / per_event[mode]:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
