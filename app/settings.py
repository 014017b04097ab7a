"""Every setting of streamlearn, read once from a config file and ``STREAMLEARN_*`` variables.

The file is ``STREAMLEARN_CONFIG``, else ``streamlearn.toml`` in the working directory if there
is one: TOML, every setting by its name in lower case without the prefix (``partitions = 4``).
An environment variable overrides the file. An unknown key or a value of the wrong type stops
the worker at start-up, naming the key and the file.

No other module reads ``os.environ``. The frozen ``settings`` object of this module is built on
first use (so that importing this module, or a pure module beside it, reads nothing), by
``app/__init__.py`` only: it builds the worker's ``app.config.Config`` from it, which every part
is given as an argument.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from app.contracts.mapping import FORMATS, EventMapping, LabelMapping, MappingError
from app.features.recipe import Recipe
from app.features.spec import FeatureSpec, FeatureSpecError, default_spec
from app.features.spec import parse as parse_features
from app.kafka.auth import SecurityError
from app.kafka.auth import check as check_security
from app.models.drift import DriftError, DriftRule
from app.models.promotion import PromotionError, PromotionRule
from app.models.spec import ModelSpec, ModelSpecError, parse_model_tables, parse_specs

PREFIX = "STREAMLEARN_"
DEV_SECRET = "streamlearn-dev-secret"
#: the config file read when STREAMLEARN_CONFIG is not set, if it exists
DEFAULT_CONFIG = "streamlearn.toml"
#: STREAMLEARN_PROCESSING_GUARANTEE's values
GUARANTEES = ("at_least_once", "exactly_once")


class SettingsError(ValueError):
    """A ``STREAMLEARN_*`` variable holds a value that cannot be used."""


def is_secret(name: str) -> bool:
    """Whether setting ``name`` is a secret (or names one's file): its value is never shown.

    >>> [is_secret(n) for n in ("web_token", "sasl_password", "checkpoint_secret", "web_url")]
    [True, True, True, False]
    >>> is_secret("schema_registry_auth"), is_secret("schema_registry_url")
    (True, False)
    """
    return any(word in name for word in ("secret", "password", "token")) or name in (
        "schema_registry_auth",
        "schema_registry_auth_file",
    )


@dataclass(frozen=True)
class Settings:
    """streamlearn's configuration; one field per ``STREAMLEARN_<FIELD>`` variable.

    >>> s = Settings.from_env({"STREAMLEARN_PARTITIONS": "4", "STREAMLEARN_ID": "x"})
    >>> (s.id, s.partitions, s.events_topic, s.dlq_topic)
    ('x', 4, 'events', 'events-dlq')
    """

    id: str = "streamlearn"
    broker: str = "kafka://127.0.0.1:9092"
    partitions: int = 1
    replication: int = 1
    store: str = "rocksdb://"
    #: the models: specs separated by ``;``, the first the champion (the config file may give
    #: ``[[model]]`` tables instead: :attr:`model_list`)
    model: str = "StandardScaler | LogisticRegression"
    events_topic: str = "events"
    labels_topic: str = "labels"
    predictions_topic: str = "predictions"
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    #: the URL other workers reach this one at, advertised to them through Faust's assignor
    #: (Faust's ``canonical_url``); "": ``http://<web_bind>:<web_port>`` (:attr:`web_url_value`)
    web_url: str = ""
    #: when set, every request to the web port needs ``Authorization: Bearer <token>``
    #: (app/web/auth.py); never shown: not in the settings' repr, a log, an error or a page
    web_token: str = field(default="", repr=False)
    #: a file whose first line is the web token (a secret mounted by an orchestrator)
    web_token_file: str = ""
    datadir: Path = Path(".data")
    window: float = 3600.0
    hop_window: float = 3600.0
    hop_step: float = 600.0
    window_expires: float = 7200.0
    #: numeric features to aggregate over windows, comma-separated; empty: every numeric one
    #: (the default spec only: a config file's features name their fields)
    window_features: str = ""
    #: most distinct values a ``distinct`` feature keeps per key and window
    distinct_max: int = 1000
    #: the ``[windows]`` table and ``[[aggregate]]`` entries of the config file (declared
    #: features, app/features/spec.py); file only
    windows_map: dict | None = field(default=None, compare=False)
    aggregate_list: list | None = field(default=None, compare=False)
    #: the config file's ``[[model]]`` tables (name, spec, role), if it gives them; file only
    model_list: list | None = field(default=None, compare=False)
    #: the config file's ``[promotion]`` table (app/models/promotion.py); file only
    promotion_map: dict | None = field(default=None, compare=False)
    #: the config file's ``[drift]`` table (app/models/drift.py); file only
    drift_map: dict | None = field(default=None, compare=False)
    #: the config file these settings were read from (None: none), for error messages
    config_file: str | None = field(default=None, compare=False)
    #: the settings the config file gave and the environment did not override (field names),
    #: so that an error names the file and the key (:meth:`named`)
    from_file: frozenset | None = field(default=None, compare=False, repr=False)
    label_ttl: float = 86400.0
    #: a label (JSON) an event still unlabelled after ``label_ttl`` of event time is learned
    #: with, once ("": none, the event is dropped and counted)
    label_default: str = ""
    #: seconds an event's or a label's time may run ahead of the worker's clock (else refused)
    max_future: float = 3600.0
    checkpoint_every: int = 10000
    #: a version of a model is kept every this many labels it learns (0: only at promotions,
    #: drift actions and on command), and the last this many of each model of each shard
    snapshot_every: int = 10000
    snapshot_keep: int = 10
    checkpoint_seconds: float = 2.0
    #: never shown: not in the settings' repr, a log, an error or a web page
    checkpoint_secret: str = field(default=DEV_SECRET, repr=False)
    #: largest checkpoint (pickled models of one shard) Kafka is set up to take, in bytes
    checkpoint_max_bytes: int = 64 * 1024 * 1024
    #: "at_least_once": every event learned once (checkpoints), its output written at least
    #: once; "exactly_once": its output too, in Kafka transactions per shard, committed with
    #: each checkpoint (consumers read with isolation.level=read_committed)
    processing_guarantee: str = "at_least_once"
    #: re-key events by their ``key`` (else ``id``) through the internal ``<id>-rekeyed`` topic
    #: before the engine reads them: for producers that do not key events by entity
    rekey: bool = False
    #: most events the engine takes from Kafka per read
    batch_size: int = 5000
    #: keys whose windows each shard keeps in memory (the rest stay in the table's store)
    key_cache: int = 20000
    #: optional topic of every event as the model saw it (enriched ``x``); empty: not written
    enriched_topic: str = ""
    #: where the challengers' predictions go ("": ``<predictions topic>-shadow``)
    shadow_topic: str = ""
    #: ``POST /predict/``: the most events one request may hold, and the most bytes
    predict_max: int = 1000
    predict_max_bytes: int = 1024 * 1024
    #: the audit trail of the models: promotions, changes at a restart ("": ``<id>-model-events``)
    model_events_topic: str = ""
    standby_replicas: int = 1
    session_timeout: float = 10.0
    #: how every client connects (app/kafka/auth.py): PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    security_protocol: str = "PLAINTEXT"
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL_*)
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    #: never shown: not in the settings' repr, a log, an error or a web page
    sasl_password: str = field(default="", repr=False)
    #: a file whose first line is the password (a secret mounted by an orchestrator)
    sasl_password_file: str = ""
    #: a function of the user's, ``package.module:function``: event dict in, event dict (or
    #: None: dropped) out, after the mapping, before windows and models (app/contracts/transform.py)
    transform: str = ""
    #: the ``[events]`` / ``[labels]`` tables of the config file (app/contracts/mapping.py); file
    #: only
    events_map: dict | None = field(default=None, compare=False)
    labels_map: dict | None = field(default=None, compare=False)
    #: the CA certificates that sign the brokers' (empty: the system's trusted CAs)
    ssl_cafile: str = ""
    #: a client certificate and its key, for mutual TLS
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    #: the schema registry's Confluent-compatible API, which ``format = "avro"`` in ``[events]``
    #: or ``[labels]`` and Avro predictions need (``https://host:8081`` for Confluent's registry,
    #: ``http://host:8080/apis/ccompat/v7`` for Apicurio's); empty: no registry
    schema_registry_url: str = ""
    #: ``user:password`` of the registry's basic auth; never shown: not in the settings' repr,
    #: a log, an error or a web page
    schema_registry_auth: str = field(default="", repr=False)
    #: a file whose first line is ``user:password`` (a secret mounted by an orchestrator)
    schema_registry_auth_file: str = ""
    #: the CA certificates that sign the registry's (https; empty: the system's trusted CAs)
    schema_registry_cafile: str = ""
    #: seconds the worker waits, reading paused and retrying, for a registry it cannot reach
    #: while running, before it stops with the reason
    schema_registry_timeout: float = 300.0
    #: ``json`` (the default) or ``avro``: predictions in Confluent's wire format, with a schema
    #: registered under ``<predictions topic>-value``
    predictions_format: str = "json"

    @cached_property
    def window_feature_names(self) -> frozenset[str] | None:
        """The features windows aggregate, or None for every numeric feature.

        >>> Settings(window_features="amount, n").window_feature_names == {"amount", "n"}
        True
        """
        names = frozenset(n.strip() for n in self.window_features.split(",") if n.strip())
        return names or None

    @cached_property
    def feature_spec(self) -> FeatureSpec:
        """The features keyed events get: the config file's ``[windows]`` and ``[[aggregate]]``,
        or without ``[[aggregate]]`` the default spec of ``WINDOW``, ``HOP_WINDOW``,
        ``HOP_STEP`` and ``WINDOW_FEATURES`` (app/features/spec.py).

        >>> Settings(window_features="amount").feature_spec.names[:2]
        ('count_tumbling_1h', '*_sum_tumbling_1h')
        """
        where = f"config file {self.config_file}" if self.config_file else "config file"
        spec = parse_features(self.windows_map, self.aggregate_list, where, self.window_expires)
        if spec is None:
            spec = default_spec(
                self.window, self.hop_window, self.hop_step, self.window_feature_names
            )
        return spec

    @cached_property
    def recipe(self) -> Recipe:
        """The recipe of :attr:`feature_spec` (app/features/recipe.py)."""
        return Recipe(self.feature_spec, self.window_expires, self.distinct_max)

    @cached_property
    def event_mapping(self) -> EventMapping | None:
        """How the events topic's messages map to events (None: streamlearn's own shape)."""
        if self.events_map is None:
            return None
        table = {**self.events_map, "topic": self.events_topic}
        return EventMapping.from_config(table, self.events_topic, "[events]")

    @cached_property
    def label_mapping(self) -> LabelMapping | None:
        """How the labels topic's messages map to labels (None: streamlearn's own shape)."""
        if self.labels_map is None:
            return None
        table = {**self.labels_map, "topic": self.labels_topic}
        return LabelMapping.from_config(table, self.labels_topic, "[labels]")

    @cached_property
    def specs(self) -> list[ModelSpec]:
        """The models :attr:`model` names, parsed (a ``SettingsError`` naming the setting where
        the user wrote it if they cannot be built).

        >>> [s.name for s in Settings(model="LogisticRegression; GaussianNB").specs]
        ['LogisticRegression', 'GaussianNB']
        """
        if self.model_list is not None:
            try:
                return parse_model_tables(self.model_list)
            except ModelSpecError as exc:
                raise SettingsError(f"config file {self.config_file}: {exc}") from None
        try:
            return parse_specs(self.model)
        except ModelSpecError as exc:
            raise SettingsError(f"{self.named('model')}: {exc}") from None

    @cached_property
    def promotion(self) -> PromotionRule | None:
        """The ``[promotion]`` rule of the config file, checked against :attr:`specs` (None:
        no table, champions change by command only)."""
        if self.promotion_map is None:
            return None
        try:
            return PromotionRule.parse(self.promotion_map, self.specs)
        except PromotionError as exc:
            raise SettingsError(f"config file {self.config_file}: {exc}") from None

    @cached_property
    def drift(self) -> DriftRule | None:
        """The ``[drift]`` rule of the config file (None: no table, no detectors)."""
        if self.drift_map is None:
            return None
        try:
            return DriftRule.parse(self.drift_map)
        except DriftError as exc:
            raise SettingsError(f"config file {self.config_file}: {exc}") from None

    @cached_property
    def label_default_value(self) -> tuple | None:
        """STREAMLEARN_LABEL_DEFAULT parsed: ``(value,)``, or None when unset.

        >>> Settings(label_default="false").label_default_value, Settings().label_default_value
        ((False,), None)
        """
        if not self.label_default.strip():
            return None
        try:
            return (orjson.loads(self.label_default),)
        except orjson.JSONDecodeError:
            raise SettingsError(
                f'{self.named("label_default")}: not a JSON value (e.g. false, 0, "ok")'
            ) from None

    @property
    def events_format(self) -> str:
        """How the events topic's values are written: the ``[events]`` table's ``format``.

        >>> Settings().events_format, Settings(events_map={"format": "avro"}).events_format
        ('json', 'avro')
        """
        return (self.events_map or {}).get("format", "json")

    @property
    def labels_format(self) -> str:
        """How the labels topic's values are written: the ``[labels]`` table's ``format``."""
        return (self.labels_map or {}).get("format", "json")

    @property
    def model_events(self) -> str:
        """The audit trail's topic: STREAMLEARN_MODEL_EVENTS_TOPIC, else ``<id>-model-events``."""
        return self.model_events_topic or f"{self.id}-model-events"

    @property
    def shadow_predictions_topic(self) -> str:
        """Where the challengers' predictions go: STREAMLEARN_SHADOW_TOPIC, else
        ``<predictions topic>-shadow``."""
        return self.shadow_topic or f"{self.predictions_topic}-shadow"

    @property
    def web_url_value(self) -> str:
        """The URL other workers reach this one at: STREAMLEARN_WEB_URL (without a trailing
        ``/``), else ``http://<web_bind>:<web_port>``.

        >>> Settings(web_bind="10.0.0.5").web_url_value, Settings(web_bind="::1").web_url_value
        ('http://10.0.0.5:6066', 'http://[::1]:6066')
        >>> Settings(web_url="https://w1.example:8443/").web_url_value
        'https://w1.example:8443'
        """
        if self.web_url:
            return self.web_url.rstrip("/")
        host = f"[{self.web_bind}]" if ":" in self.web_bind else self.web_bind
        return f"http://{host}:{self.web_port}"

    def read_web_token(self) -> str:
        """The web token: STREAMLEARN_WEB_TOKEN, else the first line of
        STREAMLEARN_WEB_TOKEN_FILE, else "" (no token: the web port is open). Read when called
        (once, by :meth:`app.config.Config.build`); a SettingsError never holds the token.

        >>> Settings(web_token="t0k").read_web_token(), Settings().read_web_token()
        ('t0k', '')
        """
        if self.web_token or not self.web_token_file:
            return self.web_token
        try:
            token = Path(self.web_token_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"{PREFIX}WEB_TOKEN_FILE={self.web_token_file!r} cannot be read "
                f"({type(exc).__name__})"
            ) from None
        if not token:
            raise SettingsError(
                f"{PREFIX}WEB_TOKEN_FILE={self.web_token_file!r}: its first line is empty"
            )
        return token

    def named(self, name: str) -> str:
        """Setting ``name`` and its value as the user wrote it, for an error message: the
        config file and its key when the file gave it, else the environment variable (the
        variable also for a default, as that is where one would set it). A secret is hidden.

        >>> Settings.from_env({"STREAMLEARN_MODEL": "bogus"}).named("model")
        "STREAMLEARN_MODEL='bogus'"
        >>> Settings(model="bogus", config_file="s.toml", from_file=frozenset({"model"})).named(
        ...     "model")
        "config file s.toml: model = 'bogus'"
        """
        value = getattr(self, name)
        shown = "(hidden)" if is_secret(name) else repr(str(value))
        if self.config_file and name in (self.from_file or ()):
            return f"config file {self.config_file}: {name} = {shown}"
        return f"{PREFIX}{name.upper()}={shown}"

    @property
    def dlq_topic(self) -> str:
        """Where malformed events go: ``<events topic>-dlq``."""
        return f"{self.events_topic}-dlq"

    @property
    def labels_dlq_topic(self) -> str:
        """Where malformed labels go: ``<labels topic>-dlq``."""
        return f"{self.labels_topic}-dlq"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the config file (if any) and ``environ`` (default: the process
        environment), the environment winning."""
        environ = os.environ if environ is None else environ
        path = environ.get(PREFIX + "CONFIG") or None
        if path is None and Path(DEFAULT_CONFIG).is_file():
            path = DEFAULT_CONFIG
        base = {**file_values(path), "config_file": path} if path else {}
        return cls.from_env(environ, base)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: Mapping | None = None
    ) -> Settings:
        """Build settings from ``environ`` (default: the process environment) over ``base``
        (checked values by field name, e.g. from :func:`file_values`)."""
        environ = os.environ if environ is None else environ
        values: dict = dict(base or {})
        from_file = set(values) - {"config_file"}
        for f in fields(cls):
            if f.default is None:
                continue  # tables of the config file only
            raw = environ.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            from_file.discard(f.name)
            if f.name == "model":  # the environment wins over the file's [[model]] tables too
                values.pop("model_list", None)
                from_file.discard("model_list")
            try:
                values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError as exc:
                expected = "1/true/yes/on or 0/false/no/off" if kind is bool else kind.__name__
                raise SettingsError(
                    f"{PREFIX}{f.name.upper()}={raw!r}: expected {expected}"
                ) from exc
        settings = cls(**values, from_file=frozenset(from_file))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that would fail later in a less readable way."""
        if self.snapshot_every < 0 or self.snapshot_keep < 1:
            raise SettingsError(
                f"{PREFIX}SNAPSHOT_EVERY must be >= 0 and {PREFIX}SNAPSHOT_KEEP >= 1, got "
                f"{self.snapshot_every} and {self.snapshot_keep}"
            )
        if self.partitions < 1:
            raise SettingsError(f"{PREFIX}PARTITIONS must be >= 1, got {self.partitions}")
        if self.replication < 1:
            raise SettingsError(f"{PREFIX}REPLICATION must be >= 1, got {self.replication}")
        if self.processing_guarantee not in GUARANTEES:
            raise SettingsError(
                f"{PREFIX}PROCESSING_GUARANTEE={self.processing_guarantee!r}: one of "
                f"{', '.join(GUARANTEES)} (at_least_once: every event is learned once and its "
                "output written at least once; exactly_once: its output exactly once too)"
            )
        if self.batch_size < 1:
            raise SettingsError(f"{PREFIX}BATCH_SIZE must be >= 1")
        for name in (
            "window",
            "hop_window",
            "hop_step",
            "window_expires",
            "label_ttl",
            "max_future",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be > 0")
        if self.hop_step > self.hop_window:
            raise SettingsError(f"{PREFIX}HOP_STEP must not exceed {PREFIX}HOP_WINDOW")
        steps = self.hop_window / self.hop_step
        if abs(steps - round(steps)) > 1e-9:
            raise SettingsError(f"{PREFIX}HOP_WINDOW must be a multiple of {PREFIX}HOP_STEP")
        if not self.aggregate_list and self.window_expires < max(self.window, self.hop_window):
            raise SettingsError(
                f"{PREFIX}WINDOW_EXPIRES must be at least {PREFIX}WINDOW and {PREFIX}HOP_WINDOW"
            )
        if self.checkpoint_every < 1:
            raise SettingsError(f"{PREFIX}CHECKPOINT_EVERY must be >= 1")
        if self.distinct_max < 1:
            raise SettingsError(f"{PREFIX}DISTINCT_MAX must be >= 1")
        self._check_web()
        try:
            check_security(self)
        except SecurityError as exc:
            raise SettingsError(str(exc)) from None
        self.check_registry()
        try:
            self.feature_spec  # noqa: B018 (checked at start-up, naming the entry)
        except FeatureSpecError as exc:
            raise SettingsError(str(exc)) from None

    def _check_web(self) -> None:
        """The web settings: one token setting at most, its file there, a URL with a scheme and
        a host (the token's value is never in the error)."""
        if self.web_token and self.web_token_file:
            raise SettingsError(
                f"{PREFIX}WEB_TOKEN and {PREFIX}WEB_TOKEN_FILE are both set: set one of them"
            )
        if self.web_token_file and not Path(self.web_token_file).is_file():
            raise SettingsError(f"{PREFIX}WEB_TOKEN_FILE={self.web_token_file!r}: no such file")
        if self.web_url:
            url = urlsplit(self.web_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise SettingsError(
                    f"{self.named('web_url')}: expected the URL other workers reach this one at, "
                    "with http:// or https:// and a host, e.g. http://10.0.0.5:6066"
                )
            try:
                url.port  # noqa: B018 (a port that is not a number raises here)
            except ValueError:
                raise SettingsError(f"{self.named('web_url')}: the port is not a number") from None

    def check_registry(self) -> None:
        """Refuse schema registry settings that cannot work, naming them (never the auth's
        value, nor a URL that holds credentials)."""
        url, auth, auth_file = (
            self.schema_registry_url,
            self.schema_registry_auth,
            self.schema_registry_auth_file,
        )
        reg = f"{PREFIX}SCHEMA_REGISTRY"
        if url:
            parts = urlsplit(url)
            if "@" in parts.netloc:
                raise SettingsError(
                    f"{reg}_URL holds credentials (user:password@): give them in {reg}_AUTH "
                    f"or {reg}_AUTH_FILE, which are never shown"
                )
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(
                    f"{self.named('schema_registry_url')}: expected http://host:port[/path] or "
                    "https://..."
                )
        for name in ("schema_registry_auth", "schema_registry_auth_file", "schema_registry_cafile"):
            if getattr(self, name) and not url:
                raise SettingsError(f"{PREFIX}{name.upper()} is set but {reg}_URL is not")
        if auth and auth_file:
            raise SettingsError(f"{reg}_AUTH and {reg}_AUTH_FILE are both set: set one of them")
        user, colon, _ = auth.partition(":")
        if auth and not (user and colon):
            raise SettingsError(f"{reg}_AUTH must be user:password (its value is hidden)")
        for name in ("schema_registry_auth_file", "schema_registry_cafile"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise SettingsError(f"{PREFIX}{name.upper()}={path!r}: no such file")
        if self.schema_registry_cafile and urlsplit(url).scheme != "https":
            raise SettingsError(f"{reg}_CAFILE is set but {reg}_URL is not https")
        if self.schema_registry_timeout <= 0:
            raise SettingsError(f"{reg}_TIMEOUT must be > 0")
        if self.predictions_format not in FORMATS:
            raise SettingsError(
                f"{self.named('predictions_format')}: expected one of {', '.join(FORMATS)}"
            )
        where = f"config file {self.config_file}: " if self.config_file else ""
        for table, value_format in (("events", self.events_format), ("labels", self.labels_format)):
            if value_format == "avro" and not url:
                raise SettingsError(
                    f"{where}[{table}] format = 'avro' needs {reg}_URL (the schema registry's "
                    "Confluent API)"
                )
        if self.predictions_format == "avro" and not url:
            raise SettingsError(
                f"{PREFIX}PREDICTIONS_FORMAT=avro needs {reg}_URL (the schema registry's "
                "Confluent API)"
            )


def _parse_bool(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case).

    >>> _parse_bool("1"), _parse_bool("Off")
    (True, False)
    """
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def file_values(path: str) -> dict:
    """The settings a TOML config file gives, by field name, checked: an unknown key or a
    value of the wrong type is a SettingsError naming the key and the file.
    """
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML ({exc})") from None
    known = {f.name: f for f in fields(Settings) if f.default is not None}
    values = {}
    for key, kind_of_map in (("events", EventMapping), ("labels", LabelMapping)):
        table = raw.pop(key, None)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise SettingsError(f"config file {path}: {key} must be a table ([{key}])")
        try:
            kind_of_map.from_config(table, key, f"config file {path}: [{key}]")
        except MappingError as exc:
            raise SettingsError(str(exc)) from None
        values[f"{key}_map"] = table
        if "topic" in table:
            values[f"{key}_topic"] = table["topic"]
    models = raw.get("model")
    if isinstance(models, list):  # [[model]] tables, the other form of the same key
        del raw["model"]
        try:
            parse_model_tables(models)
        except ModelSpecError as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
        values["model_list"] = models
    for key in ("promotion", "drift"):
        table = raw.pop(key, None)
        if table is not None:
            if not isinstance(table, dict):
                raise SettingsError(f"config file {path}: {key} must be a table ([{key}])")
            values[f"{key}_map"] = table  # (checked by Settings.promotion / Settings.drift)
    windows, aggregates = raw.pop("windows", None), raw.pop("aggregate", None)
    try:
        parse_features(windows, aggregates, f"config file {path}")
    except FeatureSpecError as exc:
        raise SettingsError(str(exc)) from None
    if windows is not None:
        values["windows_map"] = windows
    if aggregates is not None:
        values["aggregate_list"] = aggregates
    for key, value in raw.items():
        f = known.get(key)
        if f is None or key == "config":
            raise SettingsError(f"config file {path}: unknown setting {key!r}")
        kind = type(f.default)
        if kind is float and type(value) is int:
            value = float(value)
        elif isinstance(f.default, Path) and type(value) is str:
            value = Path(value)
        if type(value) is not kind and not (
            isinstance(f.default, Path) and isinstance(value, Path)
        ):
            shown = "(hidden)" if is_secret(key) else repr(value)
            raise SettingsError(f"config file {path}: {key} = {shown}: expected {_toml_type(kind)}")
        values[key] = Path(value) if isinstance(f.default, Path) else value
    return values


def _toml_type(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, "a string"
    )


def __getattr__(name: str) -> Settings:
    """``settings``: the process's settings, read from the config file and the environment on
    first use."""
    if name == "settings":
        value = Settings.load()
        globals()["settings"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
