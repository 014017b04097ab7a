"""Benchmark: one streamlearn worker against River's bare loop on the same rows.

    python bench/run.py [--events 100000] [--reps 3]

Both sides do the same work per event: JSON decode, predict_proba_one, metric update, learn_one
(StandardScaler | LogisticRegression on River's synth.Hyperplane(seed=3, n_features=10)).
The worker drains a backlog already in Kafka (validate, features, learn, predictions written);
its rate is counted from its first learned event to its last. Each worker run is a fresh app id
and a fresh process. The final Accuracy of each run is checked against River offline: a run that
learned something else is reported as invalid, not as fast. Writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import orjson
from river import datasets, evaluate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.datasets import encode_x  # noqa: E402
from app.model_spec import parse_spec  # noqa: E402
from tests.integration.harness import Pipeline, ensure_topics, run, wait_for  # noqa: E402

SPEC = parse_spec("StandardScaler | LogisticRegression")


def make_rows(n: int) -> list[bytes]:
    rows = []
    for i, (x, y) in enumerate(datasets.synth.Hyperplane(seed=3, n_features=10)):
        if i == n:
            break
        rows.append(
            orjson.dumps({"id": f"b{i}", "key": None, "ts": float(i), "x": encode_x(x), "y": y})
        )
    return rows


def river_loop(rows: list[bytes]) -> tuple[float, float]:
    """events/s of River's bare loop over the JSON rows in memory, and its final Accuracy."""
    model, metric = SPEC.build(), SPEC.new_metrics()
    start = time.perf_counter()
    for raw in rows:
        event = orjson.loads(raw)
        y_pred = model.predict_proba_one(event["x"])
        metric.update(event["y"], y_pred)
        model.learn_one(event["x"], event["y"])
    elapsed = time.perf_counter() - start
    return len(rows) / elapsed, metric[0].get()


def offline_accuracy(rows: list[bytes]) -> float:
    data = [(e["x"], e["y"]) for e in map(orjson.loads, rows)]
    model, metric = SPEC.build(), SPEC.new_metrics()
    evaluate.progressive_val_score(data, model, metric)
    return metric[0].get()


def worker_run(rows: list[bytes]) -> tuple[float, float]:
    """events/s of one worker draining ``rows`` from Kafka, and its final Accuracy."""
    pipeline = Pipeline("bench", partitions=1, model=SPEC.text)
    try:
        # the backlog is in Kafka before the worker starts
        run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events, pipeline.labels], 1, 1))
        pipeline.send(pipeline.events, rows, [orjson.loads(raw)["id"].encode() for raw in rows])
        worker = pipeline.start_worker()
        n = len(rows)

        def learned() -> int:
            entry = worker.model(SPEC.name)
            return entry["n_learned"] if entry else 0

        first = wait_for(lambda: learned() > 0 and (time.perf_counter(), learned()), timeout=300)
        t0, n0 = first
        wait_for(lambda: learned() == n, timeout=1800, what=f"{n} learned")
        elapsed = time.perf_counter() - t0
        accuracy = worker.model(SPEC.name)["metrics"]["Accuracy"]
        return (n - n0) / elapsed, accuracy
    finally:
        pipeline.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rows = make_rows(args.events)
    expected = offline_accuracy(rows)
    limit, worker = [], []
    for rep in range(args.reps):
        rate, acc = river_loop(rows)
        limit.append(rate)
        assert acc == expected, (acc, expected)
        rate, acc = worker_run(rows)
        worker.append((rate, acc == expected))
        print(
            f"rep {rep + 1}: limit {limit[-1]:,.0f} ev/s, worker {rate:,.0f} ev/s, "
            f"valid={acc == expected}",
            flush=True,
        )
    lim = statistics.median(limit)
    med = statistics.median(r for r, _ in worker)
    valid = all(v for _, v in worker)
    table = [
        ("River loop over in-memory JSON (the limit)", lim, 1.0, "ok"),
        (
            "streamlearn worker, 1 partition, no features",
            med,
            med / lim,
            "ok" if valid else "INVALID",
        ),
    ]
    print(f"\n{'system':<48} {'events/s':>10} {'ratio':>7}  metric check")
    for name, rate, ratio, check in table:
        print(f"{name:<48} {rate:>10,.0f} {ratio:>7.3f}  {check}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps(
            {
                "events": args.events,
                "reps": args.reps,
                "accuracy_offline": expected,
                "rows": [
                    dict(zip(("system", "events_s", "ratio", "check"), r, strict=True))
                    for r in table
                ],
                "limit_runs": limit,
                "worker_runs": worker,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
