"""streamlearn's pages in Faust's web view (beside Faust's own ``/router/`` and ``/table/``).

* ``GET /``: leads to ``/dashboard/`` (a redirect; it replaces Faust's ``{"status": "OK"}``).
* ``GET /dashboard/``: a live page of everything below (``app/web/static/dashboard.html``).
* ``GET /models/``: one entry per model and shard this worker owns, with its role on the shard
  (``champion``: its predictions are the predictions topic's; else ``challenger``).
* ``GET /models/{name}/``: one model's shards with their recent metric history.
* ``GET /models/{name}/history``: the metric time series the dashboard draws (bounded).
* ``GET /models/{name}/versions/``: the kept versions of a model on the shards held here.
* ``GET /model-events/``: the last promotions, drifts, rollbacks, snapshots and refused commands
  of the shards held here, newest first (the dashboard marks them on its curves).
* ``GET /stats/``: counters, recent dead-letter reasons, lag, checkpoints, feature keys, workers,
  and the settings' ``warnings``.
* ``GET /features/{key}/``: one key's windowed features at its newest event (keys held here).
* ``GET /metrics``: Prometheus exposition.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import faust
import orjson
from faust.web import Request, Response, View

from app import compat
from app.models.shard import ShardModels
from app.web.figures import Figures
from app.web.metrics import CONTENT_TYPE, exposition, registry_of

#: The counters the dashboard always shows, zeros included, in this order (``/stats/`` key, the
#: words on the page); docs/operations.md lists the same (a unit test holds them in step). Any
#: other counter of ``/stats/`` is shown below them once it is not zero.
DASHBOARD_COUNTERS: tuple[tuple[str, str], ...] = (
    ("dead_letters", "dead letters"),
    ("dead_labels", "bad labels"),
    ("orphan_labels", "orphan labels"),
    ("expired_events", "expired events"),
    ("model_errors", "model errors"),
    ("duplicates_dropped", "copies dropped"),
    ("checkpoints_restored", "checkpoints restored"),
)

#: where the page's ``COUNTERS`` list is filled in
COUNTERS_MARK = b"[/* DASHBOARD_COUNTERS */]"


def dashboard_page(template: bytes) -> bytes:
    """The dashboard's HTML with :data:`DASHBOARD_COUNTERS` filled in at :data:`COUNTERS_MARK`.

    >>> dashboard_page(b"const COUNTERS = [/* DASHBOARD_COUNTERS */];")[:46]
    b'const COUNTERS = [["dead_letters","dead letter'
    """
    if template.count(COUNTERS_MARK) != 1:
        raise ValueError(f"the dashboard template must hold {COUNTERS_MARK!r} once")
    return template.replace(COUNTERS_MARK, orjson.dumps([list(c) for c in DASHBOARD_COUNTERS]))


DASHBOARD = dashboard_page((Path(__file__).parent / "static" / "dashboard.html").read_bytes())


def _json(view: View, data, status: int = 200) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return view.bytes(body, content_type="application/json", status=status)


def last_offsets(models: ShardModels, topic: str, source: str) -> dict[str, int]:
    """The last offset a shard took of each topic it reads: ``scoring`` (joined labels) and
    its partition of ``source``, the events topic the engine reads.

    >>> last_offsets(ShardModels(1, {}, offset=4, origins={"e1": 9}), "s", "events")
    {'s:1': 4, 'events:1': 9}
    """
    out = {f"{topic}:{models.shard}": models.offset}
    events_offset = models.origins.get(f"e{models.shard}")
    if events_offset is not None:
        out[f"{source}:{models.shard}"] = events_offset
    return out


def model_entries(shards: dict[int, ShardModels], topic: str, source: str) -> list[dict]:
    """The ``/models/`` list for ``shards``: one entry per model and shard, by name then shard."""
    entries = []
    for shard, models in sorted(shards.items()):
        for name, live in models.models.items():
            entries.append(
                {
                    "name": name,
                    "spec": live.spec.text,
                    "role": "champion" if name == models.champion else "challenger",
                    "shard": shard,
                    "version": live.version,
                    "n_learned": live.n_learned,
                    "n_predicted": live.n_predicted,
                    "n_scored": live.n_scored,
                    "last_offsets": last_offsets(models, topic, source),
                    "metrics": live.metric_values(),
                    "rolling": live.rolling_values(),
                }
            )
    return sorted(entries, key=lambda e: (e["name"], e["shard"]))


def install(app: faust.App, figures: Figures, warnings: Callable[[], list[str]]) -> None:
    """Add streamlearn's pages to ``app``'s web view: they read ``figures`` when asked, and
    ``warnings()`` (the settings' warnings) for ``/stats/``; Faust's own ``/`` is left out."""
    registry = registry_of(figures)

    def _entries() -> list[dict]:
        stats = figures.stats()
        source = (stats.get("engine") or {}).get("source", "events")
        return model_entries(figures.shards(), f"{app.conf.id}-scoring", source)

    @app.page("/models/")
    async def models_list(web: View, request: Request) -> Response:
        return _json(web, _entries())

    @app.page("/models/{name}/")
    async def model_detail(web: View, request: Request, name: str) -> Response:
        entries = [e for e in _entries() if e["name"] == name]
        if not entries and name not in figures.model_names():
            return _json(web, {"error": f"no model named {name!r}"}, status=404)
        shards = figures.shards()
        for entry in entries:
            models = shards[entry["shard"]]
            entry["history"] = [
                {"t": h["t"], "offset": h["offset"], **h["models"][name]}
                for h in models.history
                if name in h["models"]
            ]
        return _json(web, {"name": name, "shards": entries})

    @app.page("/models/{name}/history")
    async def model_history(web: View, request: Request, name: str) -> Response:
        if name not in figures.model_names():
            return _json(web, {"error": f"no model named {name!r}"}, status=404)
        series = {
            shard: [
                {"t": h["t"], **h["models"][name]} for h in models.history if name in h["models"]
            ]
            for shard, models in sorted(figures.shards().items())
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

    @app.page("/models/{name}/versions/")
    async def model_versions(web: View, request: Request, name: str) -> Response:
        if name not in figures.model_names():
            return _json(web, {"error": f"no model named {name!r}"}, status=404)
        return _json(web, {"name": name, "versions": figures.versions(name)})

    @app.page("/model-events/")
    async def model_events(web: View, request: Request) -> Response:
        return _json(web, {"events": figures.model_events()})

    @app.page("/stats/")
    async def stats(web: View, request: Request) -> Response:
        worker = figures
        return _json(
            web,
            {
                "t": time.time(),
                **worker.stats(),
                "messages_received": worker.messages_received(),
                "consumer_lag": [
                    {"topic": t, "partition": p, "lag": lag}
                    for (t, p), lag in sorted(worker.consumer_lag().items())
                ],
                "this_worker": str(app.conf.canonical_url),
                "workers": workers(),
                "warnings": warnings(),
            },
        )

    @app.page("/features/{key}/")
    async def features_of_key(web: View, request: Request, key: str) -> Response:
        view = figures.features(key)
        if view is None:
            return _json(web, {"error": f"no features for key {key!r} on this worker"}, status=404)
        return _json(web, view)

    @app.page("/dashboard/")
    async def dashboard(web: View, request: Request) -> Response:
        return web.bytes(DASHBOARD, content_type="text/html")

    @app.page("/")
    async def root(web: View, request: Request) -> Response:
        """``/`` leads to the dashboard, which links to the JSON views, ``/metrics`` and Faust's own
        pages."""
        return web.bytes(
            b'<a href="/dashboard/">/dashboard/</a>',
            content_type="text/html",
            status=302,
            headers={"Location": "/dashboard/"},
        )

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(exposition(registry), content_type=CONTENT_TYPE)

    drop_faust_index(app)


#: Faust's own ``/``, a ``{"status": "OK"}`` page, that :func:`root` replaces
FAUST_INDEX = "faust.web.apps.production_index:blueprint"


def drop_faust_index(app: faust.App) -> None:
    """Leave Faust's own ``/`` (:data:`FAUST_INDEX`) out of the web server, so that only
    :func:`root` answers ``/``.

    Faust mounts that blueprint at ``/`` whenever its statistics pages are off, with no setting
    to leave it out: :func:`app.compat.drop_blueprint` removes it from the blueprints the web
    server applies when it starts (a private list of Faust's). Without it (another Faust
    version) ``/`` is still :func:`root`'s: aiohttp answers with the first route added for a
    path, and ours is added by :func:`install`, before the server starts.
    """
    compat.drop_blueprint(app.web, FAUST_INDEX)
