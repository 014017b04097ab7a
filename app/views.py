"""streamlearn's pages in Faust's web view (beside Faust's own ``/``, ``/graph/``, ...).

* ``GET /dashboard/``: a live page of everything below (``app/static/dashboard.html``).
* ``GET /models/``: one entry per model and shard this worker owns.
* ``GET /models/{name}/``: one model's shards with their recent metric history.
* ``GET /models/{name}/history``: the metric time series the dashboard draws (bounded).
* ``GET /stats/``: counters, recent dead-letter reasons, lag, checkpoints, feature keys, workers.
* ``GET /features/{key}/``: one key's current window aggregates (keys this worker holds).
* ``GET /metrics``: Prometheus exposition.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from faust.web import Request, Response, View

from agents.engine import engine
from app import app, settings
from app.metrics import CONTENT_TYPE, consumer_lag, exposition, messages_received
from app.shard import ShardModels
from app.windows import Windows
from tables.counters import recent, totals
from tables.features import key_activity_hopping, key_activity_tumbling, key_last_seen
from tables.models import live_shards
from tables.windows import WINDOWS, key_windows

DASHBOARD = (Path(__file__).parent / "static" / "dashboard.html").read_bytes()


def _json(view: View, data, status: int = 200) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return view.bytes(body, content_type="application/json", status=status)


def last_offsets(models: ShardModels, topic: str) -> dict[str, int]:
    """The last offset a shard took of each topic it reads: ``scoring`` (joined labels) and,
    with the batch engine, its partition of the events topic."""
    out = {f"{topic}:{models.shard}": models.offset}
    events_offset = models.origins.get(f"e{models.shard}")
    if engine is not None and events_offset is not None:
        out[f"{settings.events_topic}:{models.shard}"] = events_offset
    return out


def model_entries(shards: dict[int, ShardModels], topic: str) -> list[dict]:
    """The ``/models/`` list for ``shards``: one entry per model and shard, by name then shard."""
    entries = []
    for shard, models in sorted(shards.items()):
        for name, live in models.models.items():
            entries.append(
                {
                    "name": name,
                    "spec": live.spec.text,
                    "shard": shard,
                    "version": live.n_learned,
                    "n_learned": live.n_learned,
                    "n_predicted": live.n_predicted,
                    "n_scored": live.n_scored,
                    "last_offsets": last_offsets(models, topic),
                    "metrics": live.metric_values(),
                    "rolling": live.rolling_values(),
                }
            )
    return sorted(entries, key=lambda e: (e["name"], e["shard"]))


def _scoring_topic() -> str:
    return f"{app.conf.id}-scoring"


@app.page("/models/")
async def models_list(web: View, request: Request) -> Response:
    return _json(web, model_entries(live_shards.shards, _scoring_topic()))


@app.page("/models/{name}/")
async def model_detail(web: View, request: Request, name: str) -> Response:
    entries = [e for e in model_entries(live_shards.shards, _scoring_topic()) if e["name"] == name]
    if not entries and name not in {s.name for s in live_shards.specs}:
        return _json(web, {"error": f"no model named {name!r}"}, status=404)
    for entry in entries:
        models = live_shards.shards[entry["shard"]]
        entry["history"] = [
            {"t": h["t"], "offset": h["offset"], **h["models"][name]}
            for h in models.history
            if name in h["models"]
        ]
    return _json(web, {"name": name, "shards": entries})


@app.page("/models/{name}/history")
async def model_history(web: View, request: Request, name: str) -> Response:
    if name not in {s.name for s in live_shards.specs}:
        return _json(web, {"error": f"no model named {name!r}"}, status=404)
    series = {
        shard: [{"t": h["t"], **h["models"][name]} for h in models.history if name in h["models"]]
        for shard, models in sorted(live_shards.shards.items())
    }
    return _json(web, {"name": name, "shards": series})


def workers() -> list[str]:
    """Web addresses of the workers of this app that the partition assignor knows of."""
    urls = {str(app.conf.canonical_url)}
    try:
        urls.update(str(url) for url in app.router.tables_metadata())
    except Exception:  # noqa: BLE001 - no assignment yet
        pass
    return sorted(urls)


@app.page("/stats/")
async def stats(web: View, request: Request) -> Response:
    now = time.time()
    return _json(
        web,
        {
            "t": now,
            "counters": totals(),
            "recent_dead_letters": recent(),
            "shards_owned": sorted(live_shards.shards),
            "checkpoints_restored": live_shards.n_restored,
            "messages_skipped": live_shards.n_skipped,
            "rereads": live_shards.n_reread,
            "duplicates_dropped": sum(m.n_duplicates for m in live_shards.shards.values()),
            "checkpoint_age_s": {
                shard: round(now - t, 3) for shard, t in live_shards.last_checkpoint_wall.items()
            },
            "checkpoints_writing": {
                shard: {"stage": stage, "seconds": round(seconds, 3)}
                for shard, stage, seconds in live_shards.slow_checkpoints(time.monotonic(), 0.0)
            },
            "messages_received": messages_received(),
            "consumer_lag": [
                {"topic": t, "partition": p, "lag": lag}
                for (t, p), lag in sorted(consumer_lag().items())
            ],
            "feature_keys": _feature_keys(),
            "engine": engine.stats() if engine is not None else None,
            "this_worker": str(app.conf.canonical_url),
            "workers": workers(),
        },
    )


def _feature_keys() -> int:
    """Keys with windowed features: in the engine's caches, or in the agents' table."""
    if engine is not None:
        return sum(len(w.cache) for w in live_shards.windows.values())
    return len(key_last_seen)


def _window_state(key: str) -> dict | None:
    for windows in live_shards.windows.values():
        state = windows.cache.get(key)
        if state is not None:
            return state
    raw = key_windows.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    return value["s"] if value["s"] is not None else value["ps"]


def window_view(state: dict, windows: Windows = WINDOWS) -> dict:
    """A key's windows at its latest event time, as the engine adds them to its next event."""
    ts = state["t"]
    (n, sums), (n_hop, hop) = windows.aggregates(state, ts)
    return {
        "key_last_seen": ts,
        "tumbling": {"n": n, "sum": sums},
        "hopping": {"n": n_hop, "sum": hop},
    }


@app.page("/features/{key}/")
async def features_of_key(web: View, request: Request, key: str) -> Response:
    if engine is not None:
        state = _window_state(key)
        if state is None:
            return _json(web, {"error": f"no features for key {key!r} on this worker"}, 404)
        view = window_view(state)
        return _json(web, {"key": key, "last_seen": view.pop("key_last_seen"), **view})
    ts = key_last_seen.get(key)
    if ts is None:
        return _json(web, {"error": f"no features for key {key!r} on this worker"}, status=404)
    return _json(
        web,
        {
            "key": key,
            "last_seen": ts,
            # the windows holding the key's latest event, as the features stage reads them
            "tumbling": key_activity_tumbling.table._windowed_timestamp(key, ts),
            "hopping": key_activity_hopping.table._windowed_timestamp(key, ts),
        },
    )


@app.page("/dashboard/")
async def dashboard(web: View, request: Request) -> Response:
    return web.bytes(DASHBOARD, content_type="text/html")


@app.page("/metrics")
async def metrics(web: View, request: Request) -> Response:
    return web.bytes(exposition(), content_type=CONTENT_TYPE)
