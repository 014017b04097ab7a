"""Instructions per event of the engine's hot path against River's plain loop, by callgrind.

    python bench/instructions.py [--events 5000] [--keys 0]      (needs valgrind)

Wall-clock rates on a shared 2-core VM swing by 2x within minutes; instruction counts do not.
This runs, in-process and without Kafka, (1) River's plain loop over the JSON rows (the limit of
bench/run.py) and (2) the batch engine's ``_take`` over the same rows as consumer records
(validation, windows when ``--keys`` > 0, one-hot, predict/score/learn, prediction messages into
record batches), each under ``valgrind --tool=callgrind`` with instrumentation switched on only
around the measured loop, after a warm-up. It prints instructions per event of both and their
ratio: an upper bound of what the worker can reach (it leaves out Kafka fetches, checkpoints and
cache misses), and a noise-free way to tell whether a change to the hot path made it cheaper.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 2000


def measure(mode: str, events: int, keys: int) -> int:
    """Instructions callgrind counted in the measured loop of one child run."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                mode,
                "--events",
                str(events),
                "--keys",
                str(keys),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        return int(totals.group(1))


def child(mode: str, events: int, keys: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import ConsumerRecord

    from agents.engine import PUBLISH_EVERY, engine
    from app.outbox import Outbox

    workload = workloads.make(WARM_UP + events, keys=keys)
    now_ms = int(time.time() * 1000)
    records = [
        ConsumerRecord("events", 0, i, now_ms, 0, key, value, None, len(value), len(key), ())
        for i, (key, value) in enumerate(zip(workload.keys, workload.rows, strict=True))
    ]

    async def run() -> None:
        engine.outbox = Outbox(AIOKafkaProducer(bootstrap_servers="127.0.0.1:1"))  # never sends
        for topic in (engine.source, *OUTPUT_TOPICS, engine.join_topic):
            engine.partitions[topic] = 1
        engine.keeper.get(0)  # fresh models (the store is in memory and empty)
        engine.owned = {0}

        async def take(rows: list) -> None:
            for start in range(0, len(rows), PUBLISH_EVERY):
                engine.take(0, rows[start : start + PUBLISH_EVERY])
                engine.outbox.slots = {}  # drop the batches: nothing is sent

        async def loop(rows: list) -> None:
            if mode == "limit":  # bench/run.py's limit itself, on the same rows
                workloads.river_loop(Workload("", [r.value for r in rows], [], False), "lr")
            else:
                await take(rows)

        await loop(records[:WARM_UP])
        control("-i", "on")
        await loop(records[WARM_UP:])
        control("-i", "off")

    asyncio.run(run())


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)


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
from bench import workloads  # noqa: E402
from bench.workloads import Workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=0, help="> 0: keyed events, with windows")
    parser.add_argument("--child", choices=["limit", "engine"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.keys)
        return
    per_event = {m: measure(m, args.events, args.keys) / args.events for m in ("limit", "engine")}
    print(
        f"instructions per event ({args.events} events, keys={args.keys}): "
        f"River plain loop {per_event['limit']:,.0f}, engine {per_event['engine']:,.0f}, "
        f"ratio {per_event['limit'] / per_event['engine']:.3f}"
    )


if __name__ == "__main__":
    main()
