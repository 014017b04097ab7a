"""streamlearn's pages in Faust's web view (beside Faust's own ``/``, ``/graph/``, ...).

* ``GET /models/``: one entry per model and shard this worker owns.
* ``GET /models/{name}/``: one model's shards with their recent metric history.
* ``GET /stats/``: the pipeline's counters (dead letters, orphan labels, expired events, ...).
"""

from __future__ import annotations

import orjson
from faust.web import Request, Response, View

from app import app
from app.shard import ShardModels
from tables.counters import totals
from tables.models import live_shards


def _json(view: View, data, status: int = 200) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return view.bytes(body, content_type="application/json", status=status)


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
                    "last_offsets": {f"{topic}:{shard}": models.offset},
                    "metrics": live.metric_values(),
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


@app.page("/stats/")
async def stats(web: View, request: Request) -> Response:
    return _json(
        web,
        {
            "counters": totals(),
            "shards_owned": sorted(live_shards.shards),
            "checkpoints_restored": live_shards.n_restored,
            "messages_skipped": live_shards.n_skipped,
            "duplicates_dropped": sum(m.n_duplicates for m in live_shards.shards.values()),
        },
    )
