"""Run the peers (bench/peers/*.py) in their own environment, on a topic filled once per workload.

The peers' frameworks (Quix Streams, Bytewax, confluent-kafka) are installed by
``bench/peers/setup.sh`` into ``bench/.venv-peers``, so streamlearn's runtime never depends on
them. Each run is a fresh process and consumer group reading the same backlog.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from app.kafka_admin import ensure_topics
from bench.workloads import Workload
from tests.integration.harness import BOOTSTRAP, produce, run

BENCH = Path(__file__).resolve().parent
PYTHON = BENCH / ".venv-peers" / "bin" / "python"

SYSTEMS = ["confluent", "aiokafka", "bytewax", "quix", "quix-eos"]
LABELS = {
    "confluent": "confluent-kafka Consumer.consume(5000), bare loop",
    "aiokafka": "aiokafka getmany(max_records=5000), bare loop",
    "bytewax": "Bytewax, Kafka input, River in inspect",
    "quix": "Quix Streams, at-least-once",
    "quix-eos": "Quix Streams, exactly-once",
}
COMMANDS = {
    "confluent": ["plain_confluent.py"],
    "aiokafka": ["plain_aiokafka.py"],
    "bytewax": ["bytewax_flow.py"],
    "quix": ["quix.py", "--guarantee", "at-least-once"],
    "quix-eos": ["quix.py", "--guarantee", "exactly-once"],
}


def available() -> bool:
    """Whether the peers' environment exists (``bench/peers/setup.sh`` creates it)."""
    if not PYTHON.exists():
        subprocess.run(["bash", str(BENCH / "peers" / "setup.sh")], check=False)
    return PYTHON.exists()


def fill(workload: Workload) -> str:
    """A new one-partition topic holding ``workload``'s rows; its name."""
    topic = f"bench-peers-{uuid.uuid4().hex[:8]}"
    run(ensure_topics(f"kafka://{BOOTSTRAP}", [topic], 1, 1))
    run(produce(BOOTSTRAP, topic, workload.rows, workload.keys))
    return topic


def run_peer(system: str, topic: str, events: int, model: str) -> dict:
    """One run of one peer: its result line (``events_s``, ``accuracy``, ...)."""
    script, *extra = COMMANDS[system]
    command = [
        str(PYTHON),
        str(BENCH / "peers" / script),
        *extra,
        "--broker",
        BOOTSTRAP,
        "--topic",
        topic,
        "--events",
        str(events),
        "--model",
        model,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{system} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def chart(results: Path, out: Path) -> None:
    """Draw the table as a PNG with the peers' matplotlib (skipped without it)."""
    if PYTHON.exists():
        subprocess.run([str(PYTHON), str(BENCH / "chart.py"), str(results), str(out)], check=False)
