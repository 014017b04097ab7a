"""streamlearn's ``app`` package: the pure core beside the wiring of the Faust app.

``faust -A app worker -l info`` runs the worker: the Faust app object is built by
``app/faust_app.py`` when ``app.app`` is first asked for, not when this package is imported, so
the pure modules (``app.records``, ``app.windows``, ``app.features``, ``app.shard``,
``app.model_spec``, ``app.label_rules``, ``app.join``, ``app.settings``) import without building
the app, creating its data directory or reading the environment.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from app.faust_app import app

        return app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
