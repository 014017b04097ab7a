"""streamlearn's ``app`` package: the pure core beside the wiring of the Faust app.

``faust -A app worker -l info`` runs the worker: the Faust app object is built by
``app/faust_app.py`` when ``app.app`` is first asked for, not when this package is imported, so
a setting that cannot be built stops it with one line on stderr and exit status 2. The pure
modules, :data:`PURE_MODULES` (the one list: ``tests/unit/test_layers.py`` checks it and
docs/architecture.md points here), import neither faust, mode nor aiokafka, and import without
building the app, creating its data directory or reading the environment.
"""

from __future__ import annotations

import sys
from typing import Any

#: the pure core: no faust, mode or aiokafka, no app built, no environment read at import
PURE_MODULES = (
    "app.records",
    "app.mapping",
    "app.transform",
    "app.intake",
    "app.step",
    "app.feature_spec",
    "app.recipe",
    "app.aggregates",
    "app.windows",
    "app.features",
    "app.shard",
    "app.model_spec",
    "app.label_rules",
    "app.join",
    "app.settings",
    "app.offline",
    "app.figures",
)


def __getattr__(name: str) -> Any:
    if name == "app":
        from app.kafka_auth import SecurityError
        from app.settings import SettingsError
        from app.transform import TransformError

        try:
            from app.faust_app import app
        except (SettingsError, SecurityError, TransformError) as exc:
            # the user's to fix: one line, no traceback
            print(f"streamlearn: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
