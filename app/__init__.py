"""streamlearn's ``app`` package: the pure core, in rooms by concern, beside the wiring.

Rooms (each package's docstring says what it holds):

* ``app/contracts/``: the event and label contracts, a team's mapping, the Avro decoder, the
  transform, the intake;
* ``app/features/``: the feature spec, the recipe, a key's aggregates, one-hot, the offline path;
* ``app/models/``: model specs, a shard's models and metrics, label rules, the join's rules,
  the checkpoint codec;
* ``app/kafka/``: client options, topics, the outbox of record batches, the raw fetch;
* ``app/web/``: the pages, the dashboard, ``/metrics``, ``/predict/``, the web token;
* ``app/commands/``: ``replay`` and ``features``.

At the top: ``settings`` (every setting), ``config`` (what a worker is built with: the
settings and what is parsed from them, once), ``step`` (one event through intake, windows and
models), ``compat`` (every private name of the libraries), ``faust_app`` (the Faust app) and
``worker`` (the wiring: every part of a worker, assembled top to bottom).

``faust -A app worker -l info`` runs the worker: the worker is built by ``app/worker.py`` when
``app.app`` (or ``app.parts``, every part of it) is first asked for, not when this package is
imported, so a setting that cannot be built stops it with one line on stderr and exit status 2.
The pure modules, :data:`PURE_MODULES` (the one list: ``tests/unit/test_layers.py`` checks it and
docs/architecture.md points here), import neither faust, mode nor aiokafka, and import without
building the app, creating its data directory or reading the environment.
"""

from __future__ import annotations

from typing import Any

#: the pure core: no faust, mode or aiokafka, no app built, no environment read at import
PURE_MODULES = (
    "app.settings",
    "app.config",
    "app.step",
    "app.contracts.records",
    "app.contracts.avro",
    "app.contracts.avro_reader",
    "app.contracts.prediction_avro",
    "app.contracts.mapping_reader",
    "app.contracts.mapping",
    "app.contracts.transform",
    "app.contracts.intake",
    "app.features.spec",
    "app.features.recipe",
    "app.features.aggregates",
    "app.features.windows",
    "app.features.encode",
    "app.features.offline",
    "app.models.spec",
    "app.models.shard",
    "app.models.metric_batch",
    "app.models.label_rules",
    "app.models.join",
    "app.models.promotion",
    "app.models.drift",
    "app.models.signing",
    "app.models.version_file",
    "app.web.figures",
)
#: the rooms of app/ whose every module is pure (the layer test checks it)
PURE_ROOMS = ("app.contracts", "app.features")


def __getattr__(name: str) -> Any:
    # ``app.app``: the Faust app ``faust -A app`` runs; ``app.parts``: its parts (app/worker.py)
    if name == "load_model":  # a model file of `faust -A app models export`, anywhere
        from app.models.version_file import load_model

        return load_model
    if name not in ("app", "parts"):
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    from app import settings
    from app.contracts.transform import TransformError
    from app.faust_app import start_error
    from app.kafka.auth import SecurityError
    from app.kafka.registry import RegistryError
    from app.settings import SettingsError
    from app.worker import build

    try:
        parts = build(settings.settings)  # (the settings are read on first use)
    except (SettingsError, SecurityError, TransformError, RegistryError) as exc:
        start_error(exc)  # the user's to fix: one line, no traceback
    globals().update(app=parts.app, parts=parts)
    return globals()[name]
