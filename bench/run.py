"""The benchmark suite: streamlearn against the limit and the peers, in one run.

    python bench/run.py [--events 100000] [--reps 3] [--pairs 10] [--quick] [--only SECTIONS]
                                                    (make bench / make bench-quick)

Every system does the same work per event on the same rows (River's
``synth.Hyperplane(seed=3, n_features=10)`` as JSON events): decode, predict, update Accuracy,
learn, and write one prediction message per event to a topic (shaped and sized as streamlearn's);
``StandardScaler | LogisticRegression`` and ``HoeffdingTreeClassifier``. The limit is a bare
aiokafka client doing exactly that at its best (bench/peers/limit_aiokafka.py: record batches
out, no framework), in a fresh process; River's plain loop over the rows in memory (no Kafka, no
output) is a second line. Each run of a system is a fresh process with a fresh consumer group or
app id and predictions topic, between two runs of the limit (each followed by one of the
in-memory loop), and the systems take turns, repetition by repetition; the table gives the
median of ``--reps`` runs and the median of their ratios to the mean of the limit runs just
before and after each (these machines change speed by 2x within minutes), and the same to the
in-memory loop. Every run's final Accuracy is checked against River's
``evaluate.progressive_val_score`` on the same rows, and its prediction messages are counted: a
system that learned something else, or did not write one prediction per event, is reported
INVALID, not fast (FAILED: the run did not finish).

Then ``--pairs`` pairs of back-to-back drains of streamlearn and Quix Streams (at-least-once,
[lr]) on the same backlog, the order swapped from pair to pair: the events/s ratio of each pair
and a sign test (bench/duel.py), which a table of ratios to a limit this noisy cannot settle;
then as many pairs of streamlearn and Bytewax, the same way (``--against`` picks the rivals).

Beside the worker's [lr] row, the same worker with the metrics a user gets by default
(Accuracy, ROCAUC and LogLoss, each checked against River's): what they cost.

Section ``avro``: the same rows as a flat Avro record (``bench.workloads.avro_schema``) in
Confluent's wire format, the schema registered in the registry on REGISTRY_PORT (started with
scripts/registry.sh if none answers, and left running as the broker is), drained by a worker
reading them with ``[events] format = "avro"`` and a mapping to the same events
(``bench.workloads.FLAT_MAPPING``), checked as every row (Accuracy River's on the JSON rows, one
prediction per event), and run beside the worker's JSON [lr] row and the same flat records as
JSON through the same mapping, in the same repetitions, each between two limit runs: its
events/s over each, repetition by repetition, and their medians (the issue's bound: at least
0.85 of the JSON row's).

Also measured: streamlearn with windowed features on keyed events (today's fixed recipe), and
with a rich declared feature set on the same keyed events plus a small-cardinality int field
(``bench/rich_features.toml``: a sliding, a tumbling and a hopping window, the six numeric
aggregations on two fields, one ``distinct``, one ``ewm_mean``: 35 features), each checked
against River offline on what the worker's model sees (``app.features.recipe.Recipe.step``, the
worker's own code) and, for the log, River's plain loop with those features in memory; scale-out
(the same backlog on two partitions drained by one worker and by two, in back-to-back pairs), the
latency from producing an event to reading its prediction at half the maximum rate (measured
right before each run), scores on request (``POST /predict/``, 200 a second from an aiohttp
client in another process, bench/ask.py) while the stream is learned at half the maximum rate,
asked of the worker holding the key and forwarded to another one, the worker's memory from
100k to 1M distinct keys, and events/s at 10, 100 and 1,000 features. Results go to
``bench/results/latest.json`` and ``bench/results/latest.png`` (git-ignored; ``--only`` runs
some sections, e.g. ``--quick --only rich``, and writes ``bench/results/only-<sections>.json``
instead). A Kafka broker is started by scripts/kafka.sh
(and left running: ``make kafka-down``) if none answers on KAFKA_PORT.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from river import evaluate, metrics  # noqa: E402

from app.features.recipe import Recipe  # noqa: E402
from bench import peer_runs as peers  # noqa: E402
from bench import worker, workloads  # noqa: E402
from bench.duel import duel  # noqa: E402
from bench.workloads import Workload  # noqa: E402
from tests.integration import harness  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: peak resident memory of the last worker run of each kind (MB)
PEAK_RSS_MB: dict[str, float] = {}

LIMIT = peers.LABELS[peers.LIMIT]
IN_MEMORY = "River plain loop, in memory (no Kafka, no output)"
PLAIN_ROW = "streamlearn worker, no windows"
#: the worker of PLAIN_ROW [lr] with the metrics a user gets by default (Accuracy, ROCAUC and
#: LogLoss) instead of Accuracy alone: what the defaults cost, beside it in the same run
DEFAULTS_ROW = "streamlearn worker, no windows, default metrics"
DEFAULTS_MODEL = "lr-defaults"
#: the worker of PLAIN_ROW [lr] with one challenger beside the champion (bench/workloads.py):
#: what one more model costs, beside it in the same run
CHALLENGER_ROW = "streamlearn worker, no windows, one challenger"
WINDOWS_ROW = "streamlearn worker, windows on keyed events"
RICH_ROW = "streamlearn worker, rich declared features on keyed events"
#: the worker of PLAIN_ROW [lr] reading the same rows as flat Avro records, and as flat JSON
#: records through the same mapping (section ``avro``)
AVRO_ROW = "streamlearn worker, no windows, Avro events"
FLAT_JSON_ROW = "streamlearn worker, no windows, flat JSON events, same mapping"
#: the peers streamlearn meets head to head (``--pairs`` pairs each, in this order; ``--against``):
#: peer (bench/peer_runs.py's name) -> (its name in the log and the summary, its key in the JSON)
RIVALS = {
    "quix": ("Quix Streams at-least-once", "head_to_head"),
    "bytewax": ("Bytewax", "head_to_head_bytewax"),
}
#: the sections of a run, in the order they run (``--only``)
SECTIONS = (
    "throughput",
    "avro",
    "head-to-head",
    "windows",
    "rich",
    "scale-out",
    "latency",
    "scoring",
    "memory",
    "features",
)

#: One run of a system: (events/s, checks passed); ``None`` for a run that did not finish.
Run = tuple[float, bool] | None
#: A row of the table: system, events/s, ratio to the limit, ratio to the in-memory loop, check.
Row = tuple[str, float, float | None, float | None, str]


def attempt(run_once: Callable[[], tuple[float, bool]], name: str) -> Run:
    """``run_once()``, or None (said on stdout) if it raised: one failing system must not stop
    the others' runs."""
    try:
        return run_once()
    except Exception as exc:  # noqa: BLE001 - reported in the table as FAILED
        last = traceback.format_exception_only(exc)[-1].strip()
        print(f"  {name}: FAILED: {last[:1500]}", flush=True)
        return None


def check_of(runs: list[Run]) -> str:
    """ok, INVALID (a run finished with a wrong metric or output) or FAILED (one did not finish).

    >>> check_of([(1.0, True), (2.0, True)]), check_of([(1.0, True), (2.0, False)])
    ('ok', 'INVALID')
    >>> check_of([(1.0, False), None])
    'FAILED'
    """
    if any(r is None for r in runs):
        return "FAILED"
    return "ok" if all(ok for _, ok in runs) else "INVALID"


def median_rate(runs: list[Run]) -> float:
    """The median events/s of the runs that finished (0 if none did)."""
    rates = [r[0] for r in runs if r is not None]
    return statistics.median(rates) if rates else 0.0


def ratio_around(rate: float, before: Run, after: Run) -> float | None:
    """``rate`` over the mean of the reference runs just before and after it (of the one that
    finished, if only one did; None if neither did).

    >>> ratio_around(50.0, (90.0, True), (110.0, True)), ratio_around(50.0, None, (100.0, True))
    (0.5, 0.5)
    """
    around = [r[0] for r in (before, after) if r is not None and r[0] > 0]
    return rate / statistics.fmean(around) if around else None


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table_rows(
    model: str,
    order: list[tuple[str, Run]],
    limits: list[Run],
    in_memory: list[Run],
    names: list[str],
) -> tuple[list[Row], dict[str, list]]:
    """The table's rows from the runs in the order they ran: ``order[k]`` ran between
    ``limits[k]`` and ``limits[k + 1]`` (each limit run followed by ``in_memory[k]``). Also
    each system's ratios run by run (to the limit), for the log and the JSON."""
    points = list(zip(limits, in_memory, strict=True))
    same_point = [
        (lim[0], mem[0]) for lim, mem in points if lim is not None and mem is not None and lim[0]
    ]
    rows: list[Row] = [
        (
            f"{LIMIT} [{model}]",
            median_rate(limits),
            1.0,
            _median_or_none([lim / mem for lim, mem in same_point if mem]),
            check_of(limits),
        ),
        (
            f"{IN_MEMORY} [{model}]",
            median_rate(in_memory),
            _median_or_none([mem / lim for lim, mem in same_point]),
            1.0,
            check_of(in_memory),
        ),
    ]
    each: dict[str, list] = {}
    for name in names:
        runs, ratios, to_memory = [], [], []
        for k, (who, result) in enumerate(order):
            if who != name:
                continue
            runs.append(result)
            if result is None:
                continue
            ratios.append(ratio_around(result[0], limits[k], limits[k + 1]))
            to_memory.append(ratio_around(result[0], in_memory[k], in_memory[k + 1]))
        each[name] = ratios
        rows.append(
            (
                f"{name} [{model}]",
                median_rate(runs),
                _median_or_none(ratios),
                _median_or_none(to_memory),
                check_of(runs),
            )
        )
    return rows, each


def interleaved(
    model: str,
    systems: dict[str, Callable[[], tuple[float, bool]]],
    reps: int,
    limit: Callable[[], tuple[float, bool]],
    in_memory: Callable[[], tuple[float, bool]],
    runs: dict[str, list[Run]] | None = None,
    swap: bool = False,
) -> list[Row]:
    """Table rows of ``systems`` (name -> one run: events/s, checks passed), each run between
    two runs of the limit (each followed by one of the in-memory loop), repetition by
    repetition (every system once, then again; with ``swap``, every other repetition in the
    reverse order, so that no system always runs first); ``runs``, if given, gets each
    system's runs in the order they ran (for ratios between two systems, repetition by
    repetition).

    These machines change speed by 2x within minutes: a system's three runs in a row can all
    land in a slow spell. So the runs of all systems alternate, and each ratio is the median of
    the run's events/s over the mean of the limit's just before and just after it, on the same
    rows (the run after one system's is the run before the next one's, plus one at the end).
    """
    limits: list[Run] = []
    memories: list[Run] = []
    order: list[tuple[str, Run]] = []

    def reference() -> Run:
        limits.append(attempt(limit, f"{LIMIT} [{model}]"))
        memories.append(attempt(in_memory, f"{IN_MEMORY} [{model}]"))
        return limits[-1]

    for rep in range(reps):
        turn = list(systems.items())
        for name, run_once in turn[::-1] if swap and rep % 2 else turn:
            before = reference()
            result = attempt(run_once, f"{name} [{model}]")
            order.append((name, result))
            if runs is not None:
                runs.setdefault(name, []).append(result)
            rate = f"{result[0]:,.0f} ev/s" if result else "FAILED"
            limit_rate = f"{before[0]:,.0f}" if before else "FAILED"
            print(f"  {name} [{model}]: {rate}, limit before {limit_rate}", flush=True)
    reference()
    rows, each = table_rows(model, order, limits, memories, list(systems))
    for name, ratios in each.items():
        shown = ", ".join(f"{r:.3f}" if r is not None else "-" for r in ratios)
        print(f"  {name} [{model}]: ratios {shown}", flush=True)
    return rows


def raw_accuracy(workload: Workload, model: str) -> float:
    """River's ``progressive_val_score`` Accuracy over the rows' own features (no windows):
    what the limit and the in-memory loop must reach, keyed rows or not."""
    metric = metrics.Accuracy()
    data = ((e["x"], e["y"]) for e in map(orjson.loads, workload.rows))
    evaluate.progressive_val_score(data, workloads.MODELS[model].build(), metric)
    return metric.get()


def _peer(system: str, topic: str, workload: Workload, model: str, expected: float) -> tuple:
    """One run of a peer (or of the limit): events/s, and whether its Accuracy is River's and
    it wrote one prediction per event."""
    n = len(workload.rows)
    result = peers.run_peer(system, topic, n, model)
    return result["events_s"], _checked(
        f"{peers.LABELS[system]} [{model}]", result["accuracy"], expected, result["predictions"], n
    )


def _checked(name: str, accuracy: object, expected: object, predictions: int, n: int) -> bool:
    """Whether ``accuracy`` (a value, or one per shard) is River's and ``predictions`` is one per
    event; what is wrong is said on stdout."""
    ok = True
    if accuracy != expected:
        print(f"  {name}: INVALID: Accuracy {accuracy} where River has {expected}", flush=True)
        ok = False
    if predictions != n:
        print(f"  {name}: INVALID: {predictions} predictions written for {n} events", flush=True)
        ok = False
    return ok


def _in_memory(workload: Workload, model: str, expected: float) -> tuple[float, bool]:
    rate, accuracy = workloads.river_loop(workload, model)
    return rate, accuracy == expected


def _worker(
    workload: Workload,
    model: str,
    expected: float,
    kind: str,
    config: Path | None = None,
    **settings: object,
) -> tuple[float, bool]:
    """One fresh worker draining ``workload`` (``config``: its config file; ``settings``: more
    of its settings): events/s and the checks."""
    drained = worker.drain(workload, model, config, **settings)
    PEAK_RSS_MB[f"{kind} [{model}]"] = drained.peak_rss_mb
    n = len(workload.rows)
    name = f"streamlearn worker, {kind} [{model}]"
    return drained.events_s, _checked(name, drained.accuracy, expected, drained.predictions, n)


def _defaults_worker(workload: Workload, expected: dict[str, float]) -> tuple[float, bool]:
    """One fresh worker draining ``workload`` with [lr]'s default metrics: events/s, and whether
    each of its metrics is River's (``expected``) and it wrote one prediction per event."""
    drained = worker.drain(workload, DEFAULTS_MODEL)
    PEAK_RSS_MB["no windows, default metrics [lr]"] = drained.peak_rss_mb
    n = len(workload.rows)
    name = f"{DEFAULTS_ROW} [lr]"
    ok = _checked(name, drained.accuracy, expected["Accuracy"], drained.predictions, n)
    if drained.metrics != expected:
        print(f"  {name}: INVALID: metrics {drained.metrics} where River has {expected}")
        ok = False
    return drained.events_s, ok


def _challenger_worker(workload: Workload, expected: float) -> tuple[float, bool]:
    """One fresh worker draining ``workload`` with [lr] as champion and a challenger: events/s,
    and whether the champion's Accuracy is River's and the predictions topic got one message
    per event (the champion's)."""
    drained = worker.drain(workload, workloads.CHALLENGER)
    PEAK_RSS_MB["no windows, one challenger [lr]"] = drained.peak_rss_mb
    name = f"{CHALLENGER_ROW} [lr]"
    n = len(workload.rows)
    return drained.events_s, _checked(name, drained.accuracy, expected, drained.predictions, n)


def references(workload: Workload, topic: str, model: str) -> tuple[Callable, Callable]:
    """The limit's and the in-memory loop's one run on ``workload`` (in ``topic``)."""
    expected = raw_accuracy(workload, model)
    return (
        partial(_peer, peers.LIMIT, topic, workload, model, expected),
        partial(_in_memory, workload, model, expected),
    )


def throughput(
    workload: Workload, expected: dict[str, float], reps: int, topic: str, with_peers: bool
) -> list[Row]:
    """Rows of the main table: the limit, the in-memory loop, the peers (if ``with_peers``) and
    the worker, per model of ``expected`` (model -> River's offline Accuracy on ``workload``),
    all reading ``topic`` (the worker: a topic of its own with the same rows)."""
    rows = []
    for model, accuracy in expected.items():
        systems: dict[str, Callable[[], tuple[float, bool]]] = {
            peers.LABELS[system]: partial(_peer, system, topic, workload, model, accuracy)
            for system in (peers.SYSTEMS if with_peers else [])
        }
        systems[PLAIN_ROW] = partial(_worker, workload, model, accuracy, "no windows")
        if model == "lr":
            defaults = workloads.offline_metrics(workload, DEFAULTS_MODEL)
            systems[DEFAULTS_ROW] = partial(_defaults_worker, workload, defaults)
            systems[CHALLENGER_ROW] = partial(_challenger_worker, workload, accuracy)
        rows += interleaved(model, systems, reps, *references(workload, topic, model))
    return rows


def paired_ratios(runs: list[Run], against: list[Run]) -> list[float]:
    """The events/s of each run of ``runs`` over that of the run of ``against`` of the same
    repetition (repetitions where either did not finish left out).

    >>> paired_ratios([(90.0, True), None, (80.0, True)], [(100.0, True)] * 3)
    [0.9, 0.8]
    """
    return [
        run[0] / other[0]
        for run, other in zip(runs, against, strict=True)
        if run is not None and other is not None and other[0] > 0
    ]


def avro(workload: Workload, topic: str, reps: int) -> tuple[list[Row], dict]:
    """The Avro row: ``workload``'s rows as a flat Avro record in Confluent's wire format (the
    schema registered in the registry on REGISTRY_PORT), drained by a worker with
    :data:`bench.workloads.FLAT_MAPPING` (``[events] format = "avro"``), beside the JSON row
    [lr] (PLAIN_ROW, streamlearn's own event shape) and the same flat records as JSON through
    the same mapping (FLAT_JSON_ROW: what the mapping costs, so that the Avro row's ratio to it
    is the decoding's alone), in the same repetitions, each between two limit runs. Gives the
    rows, and the Avro row's events/s over each JSON row's, repetition by repetition (paired),
    with their medians; every other repetition runs the three in the reverse order. Every run
    is checked as the table's rows are (Accuracy River's on the JSON rows, one prediction per
    event)."""
    url = ensure_registry()
    schema = workloads.avro_schema(workload)
    schema_id = register(url, f"bench-avro-{uuid.uuid4().hex[:8]}-value", schema)
    rows = workloads.as_avro(workload, schema_id)
    flat_json = workloads.as_flat_json(workload)
    expected = raw_accuracy(workload, "lr")
    RESULTS.mkdir(parents=True, exist_ok=True)
    systems: dict[str, Callable[[], tuple[float, bool]]] = {
        PLAIN_ROW: partial(_worker, workload, "lr", expected, "no windows"),
        FLAT_JSON_ROW: partial(
            _worker,
            flat_json,
            "lr",
            expected,
            "no windows, flat JSON events",
            workloads.flat_config("json", RESULTS),
        ),
        AVRO_ROW: partial(
            _worker,
            rows,
            "lr",
            expected,
            "no windows, Avro events",
            workloads.flat_config("avro", RESULTS),
            schema_registry_url=url,
        ),
    }
    runs: dict[str, list[Run]] = {}
    table = interleaved(
        "lr", systems, reps, *references(workload, topic, "lr"), runs=runs, swap=True
    )
    to_json = paired_ratios(runs[AVRO_ROW], runs[PLAIN_ROW])
    to_flat = paired_ratios(runs[AVRO_ROW], runs[FLAT_JSON_ROW])
    return table, {
        "ratio_to_json": _median_or_none(to_json),
        "ratios_to_json": to_json,
        "ratio_to_flat_json": _median_or_none(to_flat),
        "ratios_to_flat_json": to_flat,
        "bytes_avro": statistics.fmean(len(r) for r in rows.rows),
        "bytes_flat_json": statistics.fmean(len(r) for r in flat_json.rows),
        "bytes_json": statistics.fmean(len(r) for r in workload.rows),
        "check": check_of(runs[AVRO_ROW]),
    }


def register(url: str, subject: str, schema: dict) -> int:
    """Register ``schema`` under ``subject`` in the registry at ``url``; its id."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client = SchemaRegistryClient({"url": url})
    return client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))


def windowed(
    workload: Workload, topic: str, models: list[str], reps: int, loops: dict
) -> list[Row]:
    """The windows row per model: the worker with today's fixed recipe on keyed events.
    ``loops`` gets River's plain loop with those features in memory (for the log)."""
    rows = []
    recipe = workloads.fixed_recipe()
    for model in models:
        expected = workloads.offline_accuracy(workload, model, recipe)
        run_once = partial(_worker, workload, model, expected, "windows")
        systems = {WINDOWS_ROW: run_once}
        # its limit: the bare client on the same keyed rows, without windows (as above)
        rows += interleaved(model, systems, reps, *references(workload, topic, model))[2:]
        loops[f"{WINDOWS_ROW} [{model}]"] = featured(workload, model, recipe, expected)
    return rows


def rich(workload: Workload, topic: str, models: list[str], reps: int, loops: dict) -> list[Row]:
    """The rich row per model: the worker with ``bench/rich_features.toml``'s declared
    features on keyed events (with a ``category`` field for its ``distinct``), checked against
    River offline on the same features (``app.features.recipe``, the worker's code); its limit and
    in-memory loop are those of every row, on these very rows. ``loops``: as :func:`windowed`."""
    spec = workloads.rich_spec()
    recipe = workloads.declared_recipe(spec)
    rows = []
    for model in models:
        expected = workloads.offline_accuracy(workload, model, recipe)
        run_once = partial(
            _worker, workload, model, expected, "rich features", workloads.RICH_FEATURES
        )
        systems = {RICH_ROW: run_once}
        rows += interleaved(model, systems, reps, *references(workload, topic, model))[2:]
        loops[f"{RICH_ROW} [{model}]"] = featured(workload, model, recipe, expected)
    return rows


def one_more_model(workload: Workload, reps: int) -> dict:
    """What one more River model costs without Kafka: River's plain loop with [lr] and the
    challenger row's challenger, against [lr] alone, ``reps`` back-to-back pairs: the medians
    and their ratio (the challenger row's cost to compare with)."""
    pairs = []
    for _ in range(reps):
        one, _ = workloads.river_loop(workload, "lr")
        both, _ = workloads.river_loop_with_challenger(workload)
        pairs.append((one, both))
    ratio = statistics.median(both / one for one, both in pairs)
    out = {
        "events_s": statistics.median(b for _, b in pairs),
        "plain_loop_events_s": statistics.median(o for o, _ in pairs),
        "ratio": ratio,
        "check": "ok",
    }
    print(
        f"  in memory [lr]: River's loop with one more model {out['events_s']:,.0f} ev/s, "
        f"without {out['plain_loop_events_s']:,.0f} ev/s: {ratio:.3f} (median of {reps} pairs)",
        flush=True,
    )
    return out


def featured(workload: Workload, model: str, recipe: Recipe, expected: float) -> dict:
    """River's plain loop with ``recipe``'s features, in memory, beside the plain loop without
    (one run each, back to back): what the features and the wider model cost without Kafka."""
    with_rate, accuracy = workloads.featured_loop(workload, model, recipe)
    plain_rate, _ = workloads.river_loop(workload, model)
    out = {
        "events_s": with_rate,
        "plain_loop_events_s": plain_rate,
        "ratio": with_rate / plain_rate,
        "check": "ok" if accuracy == expected else "INVALID",
    }
    print(
        f"  in memory [{model}]: River's loop with these features {with_rate:,.0f} ev/s, "
        f"without {plain_rate:,.0f} ev/s: {out['ratio']:.3f} ({out['check']})",
        flush=True,
    )
    return out


def scale_out(workload: Workload, model: str, pairs: int, partitions: int = 2) -> dict:
    """``pairs`` back-to-back pairs of drains of ``workload`` on ``partitions`` partitions, by
    one worker and by two (the order swapped each pair): events/s of the whole drain of each,
    the ratio two/one, the machine's cores."""
    n = len(workload.rows)
    expected = {
        p: workloads.offline_accuracy(part, model)
        for p, part in enumerate(worker.split(workload, partitions))
    }
    runs: dict[int, list[dict]] = {1: [], 2: []}

    def drain(workers: int) -> tuple[float, bool]:
        out = worker.scale_out(workload, model, workers, partitions)
        name = f"scale-out, {workers} worker(s) [{model}]"
        # each model shard learned its partition's rows as River does, and wrote their predictions
        ok = _checked(name, out.accuracy, expected, out.predictions, n)
        if out.events != n:
            print(f"  {name}: INVALID: {out.events} events taken for {n}", flush=True)
            ok = False
        runs[workers].append(
            {
                "events_s": out.events_s,
                "taken": out.taken,
                "predictions": out.predictions,
                "accuracy": out.accuracy,
            }
        )
        print(
            f"  {workers} worker(s): {out.events_s:,.0f} ev/s, events taken {out.taken}", flush=True
        )
        return out.events_s, ok

    h = duel(partial(drain, 2), partial(drain, 1), pairs, label="two workers / one")
    return {
        "model": model,
        "events": n,
        "partitions": partitions,
        "cores": os.cpu_count(),
        "one_worker_events_s": statistics.median(r["events_s"] for r in runs[1]),
        "two_workers_events_s": statistics.median(r["events_s"] for r in runs[2]),
        "ratio": h["median_ratio"],
        "ratios": h["ratios"],
        "check": h["check"],
        "expected_accuracy_by_shard": expected,
        "runs": runs,
    }


def scaling(counts: list[int], events: dict[int, int]) -> list[dict]:
    out = []
    for n_features in counts:
        workload = workloads.make(events[n_features], n_features=n_features)
        expected = workloads.offline_accuracy(workload, "lr")
        topic = peers.fill(workload)
        try:
            limit, in_memory = references(workload, topic, "lr")
            limit_rate, limit_ok = limit()
        finally:
            peers.delete_topics([topic])
        memory_rate, memory_ok = in_memory()
        drained = worker.drain(workload, "lr")
        ok = _checked(
            f"{n_features} features",
            drained.accuracy,
            expected,
            drained.predictions,
            len(workload.rows),
        )
        out.append(
            {
                "features": n_features,
                "events": len(workload.rows),
                "limit_events_s": limit_rate,
                "in_memory_events_s": memory_rate,
                "worker_events_s": drained.events_s,
                "ratio": drained.events_s / limit_rate,
                "ratio_in_memory": drained.events_s / memory_rate,
                "check": "ok" if ok and limit_ok and memory_ok else "INVALID",
            }
        )
        print(f"  {n_features} features: {out[-1]}", flush=True)
    return out


def latency(workload: Workload, seconds: float, reps: int, maximum: float | None = None) -> dict:
    """p50/p99 at half the worker's maximum rate: medians over ``reps`` runs, each with a fresh
    worker, at half the rate a worker drained ``workload`` at right before it (or, given
    ``maximum``, half of that: the quick run's one worker drain of the throughput table).

    Each run sends ``seconds`` of events at that rate, however fast the machine: when a run
    needs more rows than ``workload`` (``workloads.make(n)``'s) holds, it gets more of the same
    rows (a machine 4x faster than ours sends the quick run's 20,000 in under a second).

    These machines change speed by 2x within minutes: half the maximum measured minutes earlier
    can be most of the maximum now, and the run then measures a queue, not the pipeline. One
    run's p99 is the 1% slowest of a few seconds: a single stall of these shared cores moves it
    by tens of milliseconds, so it is quoted as the median run, with every run beside.
    """
    runs = []
    rows = workload
    for _ in range(reps):
        rate = round((maximum or worker.drain(workload, "lr").events_s) / 2)
        needed = math.ceil(rate * seconds)
        if len(rows.rows) < needed:
            rows = workloads.make(needed)
            if rows.rows[: len(workload.rows)] != workload.rows:
                raise ValueError("latency: the rows must be workloads.make(n)'s")
        runs.append(worker.latency(rows, "lr", rate=rate, seconds=seconds))
        print(f"  {runs[-1]}", flush=True)
    return {
        "rate": round(statistics.median(r["rate"] for r in runs)),
        "events": runs[0]["events"],
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "runs": [
            {k: r[k] for k in ("rate", "events", "seconds", "p50_ms", "p99_ms")} for r in runs
        ],
    }


#: ``POST /predict/`` requests a second in the scoring section (a card-payment service's
#: authorisations on one worker), one event each
ASKS = 200
#: where the scoring section asks: its name in the log and the JSON -> forwarded
ASKED = {"this worker": False, "forwarded to another worker": True}


def scoring(
    workload: Workload, seconds: float, reps: int, maximum: float | None = None
) -> dict[str, dict]:
    """Scores on request while the workers learn: for each of :data:`ASKED`, ``reps`` runs of
    ``worker.asking``, each at half the rate one worker drained ``workload`` at right before it
    (or, given ``maximum``, half of that), the client asking :data:`ASKS` times a second for
    ``seconds``. Per row: the medians of the runs' p50 and p99 (ms, answered requests), the
    events/s the workers learned meanwhile, the statuses of every request, every run beside.

    The forwarded row runs two workers of two partitions at that rate in all, on these 2 cores
    beside the broker and both clients: each learns a quarter of its maximum, the machine as
    busy as in the first row.
    """
    out = {}
    rows = workload
    for where, forwarded in ASKED.items():
        runs = []
        for _ in range(reps):
            rate = round((maximum or worker.drain(workload, "lr").events_s) / 2)
            needed = math.ceil(rate * (seconds + 2))
            if len(rows.rows) < needed:
                rows = workloads.make(needed)
                if rows.rows[: len(workload.rows)] != workload.rows:
                    raise ValueError("scoring: the rows must be workloads.make(n)'s")
            runs.append(worker.asking(rows, "lr", rate, seconds, ASKS, forwarded))
            print(f"  {where}: {runs[-1]}", flush=True)
        statuses: dict[str, int] = {}
        for r in runs:
            for status, count in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        out[where] = {
            "asks": ASKS,
            "rate": round(statistics.median(r["stream_rate"] for r in runs)),
            "learned_events_s": round(statistics.median(r["learned_events_s"] for r in runs)),
            "p50_ms": _median_or_none([r["p50_ms"] for r in runs]),
            "p99_ms": _median_or_none([r["p99_ms"] for r in runs]),
            "statuses": statuses,
            "runs": runs,
        }
    return out


def format_scoring(score: dict[str, dict]) -> str:
    """The scoring section's lines.

    >>> print(format_scoring({"here": {"asks": 200, "rate": 9000, "learned_events_s": 8990,
    ...     "p50_ms": 1.25, "p99_ms": 9.5, "statuses": {"200": 400}, "runs": [{}, {}]}}))
    POST /predict/ while learning, 200 requests/s, medians of 2 runs:
      here: p50 1.2 ms, p99 9.5 ms; learning 8,990 ev/s (sent at 9,000); statuses {'200': 400}
    """
    lines = []
    for where, row in score.items():
        if not lines:
            lines.append(
                f"POST /predict/ while learning, {row['asks']} requests/s, medians of "
                f"{len(row['runs'])} runs:"
            )
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f}"
        p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.1f}"
        lines.append(
            f"  {where}: p50 {p50} ms, p99 {p99} ms; learning {row['learned_events_s']:,} ev/s "
            f"(sent at {row['rate']:,}); statuses {row['statuses']}"
        )
    return "\n".join(lines)


def ensure_broker() -> None:
    """Start a broker with scripts/kafka.sh if nothing answers on KAFKA_PORT (it is left
    running, for the next run and the tests: ``make kafka-down`` stops it)."""
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return
    except OSError:
        pass
    print(f"no Kafka broker on port {port}: starting one (scripts/kafka.sh up 1)", flush=True)
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "up", "1"], check=True)


def ensure_registry() -> str:
    """The Confluent API's URL of the schema registry on REGISTRY_PORT (8081), started with
    scripts/registry.sh if nothing answers there (left running, as the broker: ``make
    registry-down`` stops it)."""
    port = int(os.environ.get("REGISTRY_PORT", "8081"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    except OSError:
        print(f"no schema registry on port {port}: starting one (scripts/registry.sh up)")
        subprocess.run([str(ROOT / "scripts" / "registry.sh"), "up"], check=True)
    return f"http://127.0.0.1:{port}/apis/ccompat/v7"


def format_table(rows: list[Row]) -> str:
    """The table as printed: events/s, the ratio to the limit and to the in-memory loop.

    >>> print(format_table([("x [lr]", 1234.5, 0.5, None, "ok")]))  # doctest: +NORMALIZE_WHITESPACE
    system   events/s  ratio  in-memory  check
    x [lr]      1,234  0.500          -  ok
    """
    width = max(len("system"), *(len(r[0]) for r in rows))

    def ratio(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "-"

    lines = [f"{'system':<{width}} {'events/s':>10} {'ratio':>6} {'in-memory':>10}  check"]
    for name, rate, to_limit, to_memory, check in rows:
        lines.append(
            f"{name:<{width}} {rate:>10,.0f} {ratio(to_limit):>6} {ratio(to_memory):>10}  {check}"
        )
    return "\n".join(lines)


def format_scale_out(s: dict) -> str:
    """The scale-out lines: each drain's events/s (the whole drain, medians), the ratio.

    >>> print(format_scale_out({"model": "lr", "events": 20000, "partitions": 2, "cores": 2,
    ...     "one_worker_events_s": 12407.2, "two_workers_events_s": 20515.0, "ratio": 1.6536,
    ...     "ratios": [1.6536], "check": "ok",
    ...     "runs": {1: [{"taken": [20000]}], 2: [{"taken": [10078, 9922]}]}}))
    scale-out [lr]: 20,000 events on 2 partitions, 2 cores (os.cpu_count()), 1 pair(s) of drains
      one worker       12,407 ev/s  (events taken: 20,000)
      two workers      20,515 ev/s  (events taken: 10,078 + 9,922)
      two / one         1.654       (pairs: 1.654)  ok
    """
    taken = {k: " + ".join(f"{t:,}" for t in runs[-1]["taken"]) for k, runs in s["runs"].items()}
    return "\n".join(
        [
            f"scale-out [{s['model']}]: {s['events']:,} events on {s['partitions']} partitions, "
            f"{s['cores']} cores (os.cpu_count()), {len(s['ratios'])} pair(s) of drains",
            f"  one worker   {s['one_worker_events_s']:>10,.0f} ev/s  (events taken: {taken[1]})",
            f"  two workers  {s['two_workers_events_s']:>10,.0f} ev/s  (events taken: {taken[2]})",
            f"  two / one    {s['ratio']:>10.3f}       "
            f"(pairs: {', '.join(f'{r:.3f}' for r in s['ratios'])})  {s['check']}",
        ]
    )


def head_to_head(rival: str, workload: Workload, topic: str, expected: float, pairs: int) -> dict:
    """``pairs`` pairs of back-to-back drains of ``workload`` [lr], a streamlearn worker and the
    peer ``rival`` (reading ``topic``), each writing its predictions and checked as in the
    table, the order swapped each pair: bench/duel.py's result, with the rival's name."""
    name = RIVALS[rival][0]
    result = duel(
        partial(_worker, workload, "lr", expected, "no windows"),
        partial(_peer, rival, topic, workload, "lr", expected),
        pairs,
        label=f"streamlearn / {name}",
    )
    return {"against": peers.LABELS[rival], **result}


def format_duel(name: str, h: dict) -> str:
    """The summary line of a head-to-head duel against ``name``.

    >>> print(format_duel("Bytewax", {"pairs": 4, "ahead": 3, "median_ratio": 1.0512,
    ...     "ratios": [0.98, 1.03, 1.07, 1.1], "p_value": 0.625, "check": "ok"}))
    ... # doctest: +NORMALIZE_WHITESPACE
    streamlearn worker against Bytewax [lr], 4 pairs of back-to-back drains: ahead in 3 of 4,
    events/s ratio median 1.051 (0.980-1.100), sign test p = 0.625 (ok)
    """
    return (
        f"streamlearn worker against {name} [lr], {h['pairs']} pairs of "
        f"back-to-back drains: ahead in {h['ahead']} of {h['pairs']}, events/s ratio median "
        f"{h['median_ratio']:.3f} ({min(h['ratios']):.3f}-{max(h['ratios']):.3f}), sign test "
        f"p = {h['p_value']:.3f} ({h['check']})"
    )


def guarded(section: Callable[[], object], what: str) -> object:
    """``section()``, or None (said on stdout) if it raised: the results of the other sections
    are still printed and written."""
    try:
        return section()
    except Exception:  # noqa: BLE001 - the section is reported as failed
        print(f"  {what} FAILED:\n{traceback.format_exc()[-3000:]}", flush=True)
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one rep, LR only")
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        help="head-to-head pairs against each rival of --against (0: none)",
    )
    parser.add_argument(
        "--against",
        type=rivals_of,
        default=tuple(RIVALS),
        metavar="PEERS",
        help=f"the head-to-head rivals, comma-separated (default: {','.join(RIVALS)})",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Quix, Bytewax, ...")
    parser.add_argument(
        "--client-env",
        type=Path,
        help="connect as this file's STREAMLEARN_* settings say (scripts/kafka.sh's client.env): "
        "streamlearn's runs over TLS/SASL; the peers and the limit connect in plain text only",
    )
    parser.add_argument(
        "--only",
        type=sections_of,
        default=(),
        metavar="SECTIONS",
        help=f"run these sections only, comma-separated ({', '.join(SECTIONS)}); results go to "
        "bench/results/only-<sections>.json, not latest.json",
    )
    args = parser.parse_args()
    if args.client_env is not None:
        harness.use_security(args.client_env)
    only = args.only

    def wanted(name: str) -> bool:
        return not only or name in only

    quick = args.quick
    n = 20_000 if quick else args.events
    reps = 1 if quick else args.reps
    models = ["lr"] if quick else ["lr", "tree"]
    pairs = 0 if quick else args.pairs
    ensure_broker()
    needs_peers = wanted("throughput") or wanted("head-to-head")
    with_peers = not args.no_peers and needs_peers and peers.available()
    started = time.time()

    def section(title: str) -> None:
        print(f"[{time.time() - started:4.0f} s] {title}", flush=True)

    plain = workloads.make(n)
    table: list[Row] = []
    filled: list[str] = []
    loops: dict[str, dict] = {}
    if wanted("throughput") or wanted("head-to-head") or wanted("avro"):
        topic = peers.fill(plain)
        filled.append(topic)
        expected = {model: workloads.offline_accuracy(plain, model) for model in models}
    if wanted("throughput"):
        section(f"throughput: {n} events, {reps} reps, models {models}")
        table += throughput(plain, expected, reps, topic, with_peers)
        loops[f"{CHALLENGER_ROW} [lr]"] = one_more_model(plain, reps)
    avro_row = None
    if wanted("avro"):
        section(f"Avro events beside JSON [lr]: {n} events, {reps} reps")
        found = guarded(lambda: avro(plain, topic, reps), "Avro events")
        if found:
            rows, avro_row = found
            table += rows
    duels: dict[str, dict | None] = {}
    if with_peers and pairs and wanted("head-to-head"):
        for rival in args.against:
            name = RIVALS[rival][0]
            section(f"streamlearn against {name} [lr]: {pairs} pairs of drains")
            duels[rival] = guarded(
                partial(head_to_head, rival, plain, topic, expected["lr"], pairs),
                f"head to head with {name}",
            )
    if wanted("windows"):
        section("windowed features on keyed events")
        keyed = workloads.make(n, keys=1000)
        filled.append(keyed_topic := peers.fill(keyed))
        table += windowed(keyed, keyed_topic, models, reps, loops)
    if wanted("rich"):
        section(f"rich declared features on keyed events ({workloads.RICH_FEATURES.name})")
        # the keyed rows of the windows row, plus the int field its distinct counts
        rich_rows = workloads.make(n, keys=1000, categories=workloads.CATEGORIES)
        filled.append(rich_topic := peers.fill(rich_rows))
        table += rich(rich_rows, rich_topic, models, reps, loops)
    if filled:
        peers.delete_topics(filled)

    scale = lat = mem = None
    scale_pairs = 1 if quick else reps
    if wanted("scale-out"):
        section(
            f"scale-out: {n} events on 2 partitions, one worker and two, {scale_pairs} pair(s) [lr]"
        )
        scale = guarded(lambda: scale_out(plain, "lr", scale_pairs), "scale-out")

    # (quick: half the table's one worker drain, not one more drain; none without the table)
    drained = (
        next((r for name, r, _, _, _ in table if name.startswith(PLAIN_ROW)), None)
        if quick
        else None
    )
    if wanted("latency"):
        section(
            "latency at half the maximum, "
            + ("the throughput table's" if drained else "measured right before each run")
        )
        lat = guarded(
            lambda: latency(plain, seconds=3 if quick else 10, reps=reps, maximum=drained or None),
            "latency",
        )

    score = None
    if wanted("scoring"):
        section(f"POST /predict/ at {ASKS} requests/s while learning at half the maximum")
        score = guarded(
            lambda: scoring(plain, seconds=3 if quick else 10, reps=reps, maximum=drained or None),
            "scoring",
        )

    if wanted("memory"):
        section("memory as distinct keys grow")
        marks = [10_000, 50_000] if quick else [100_000, 1_000_000]
        keys = workloads.make(marks[-1], n_features=3, keys=marks[-1])
        mem = guarded(lambda: worker.memory(keys, "lr", marks), "memory")
        print(f"  {mem}", flush=True)

    features = []
    if wanted("features"):
        section("cost per feature count")
        # (quick: the 10-feature row is the throughput table's own)
        sizes = {10: 20_000, 100: 5_000, 1000: 1_000} if not quick else {100: 2_000}
        features = guarded(lambda: scaling(list(sizes), sizes), "cost per feature count") or []

    print()
    if table:
        print(format_table(table))
        print(
            f"(ratio: to the limit, {LIMIT}; in-memory: to the {IN_MEMORY}; medians of {reps} "
            "run(s), each against the runs just before and after it)"
        )
    if avro_row:
        for name, key in ((PLAIN_ROW, "json"), (FLAT_JSON_ROW, "flat_json")):
            each = ", ".join(f"{r:.3f}" for r in avro_row[f"ratios_to_{key}"])
            print(
                f"{AVRO_ROW} [lr] over {name} [lr], paired by repetition: median "
                f"{avro_row[f'ratio_to_{key}'] or 0:.3f} ({each}; {avro_row['check']})"
            )
        print(
            f"messages: Avro {avro_row['bytes_avro']:.0f} bytes, flat JSON "
            f"{avro_row['bytes_flat_json']:.0f}, JSON {avro_row['bytes_json']:.0f}"
        )
    for name, loop in loops.items():
        print(
            f"{name}: River's plain loop with its features, in memory, "
            f"{loop['events_s']:,.0f} ev/s, {loop['ratio']:.3f} of the loop without "
            f"({loop['check']})"
        )
    if scale:
        print("\n" + format_scale_out(scale))
    if any(duels.values()):
        print()
    for rival, h in duels.items():
        if h:
            print(format_duel(RIVALS[rival][0], h))
    if lat:
        each = ", ".join(f"{r['p99_ms']:.1f} at {r['rate']:,}" for r in lat["runs"])
        print(
            f"\nlatency at half the maximum (median {lat['rate']:,} ev/s), median of "
            f"{len(lat['runs'])} runs: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
            f"(p99 ms at ev/s of each run: {each})"
        )
    if score:
        print(format_scoring(score))
    if mem:
        print(
            "worker memory (MB) by distinct keys: "
            + ", ".join(f"{k:,}: {v:.0f}" for k, v in mem.items())
        )
    for row in features:
        print(
            f"{row['features']:>5} features: limit {row['limit_events_s']:,.0f} ev/s, in memory "
            f"{row['in_memory_events_s']:,.0f}, worker {row['worker_events_s']:,.0f} ev/s, ratio "
            f"{row['ratio']:.3f} (in memory {row['ratio_in_memory']:.3f}) ({row['check']})"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{_cpus()} cores, Python {platform.python_version()}",
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "events": n,
        "reps": reps,
        "limit": LIMIT,
        # (a row without a ratio, all its runs FAILED: 0, for the chart)
        "rows": [
            {
                "system": name,
                "events_s": rate,
                "ratio": ratio or 0.0,
                "ratio_in_memory": to_memory,
                "check": check,
            }
            for name, rate, ratio, to_memory, check in table
        ],
        "scale_out": scale,
        # (each rival's duel under its key; None: not run, or it failed)
        **{key: duels.get(rival) for rival, (_, key) in RIVALS.items()},
        "latency": lat,
        "scoring": score,
        "memory_mb_by_keys": mem,
        "peak_rss_mb": PEAK_RSS_MB,
        "features": features,
        "in_memory_with_features": loops,
        "avro": avro_row,
        "sections": list(only or SECTIONS),
        "seconds": round(time.time() - started),
    }
    stem = "only-" + "-".join(only) if only else "latest"
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out} in {result['seconds']} s")
    if table:
        peers.chart(out, RESULTS / f"{stem}.png")


def sections_of(text: str) -> tuple[str, ...]:
    """The sections ``--only`` names, in run order.

    >>> sections_of("rich, windows")
    ('windows', 'rich')
    >>> sections_of("rich,nope")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: unknown section(s): nope (one of: throughput, avro, \
head-to-head, windows, rich, scale-out, latency, scoring, memory, features)
    """
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names.difference(SECTIONS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown section(s): {', '.join(unknown)} (one of: {', '.join(SECTIONS)})"
        )
    return tuple(s for s in SECTIONS if s in names)


def rivals_of(text: str) -> tuple[str, ...]:
    """The head-to-head rivals ``--against`` names, in run order.

    >>> rivals_of("bytewax"), rivals_of("bytewax, quix")
    (('bytewax',), ('quix', 'bytewax'))
    >>> rivals_of("flink")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: unknown rival(s): flink (one of: quix, bytewax)
    """
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names.difference(RIVALS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown rival(s): {', '.join(unknown)} (one of: {', '.join(RIVALS)})"
        )
    return tuple(r for r in RIVALS if r in names)


def _cpus() -> int:
    try:
        return int(subprocess.check_output(["nproc"], text=True))
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    main()
