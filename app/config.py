"""What a worker is configured with, built once from the settings and passed as an argument.

Reads a :class:`app.settings.Settings` (the config file and ``STREAMLEARN_*`` variables); gives a
:class:`Config`: those values, plus what is parsed from them once, at start-up, so that an error
in any of them stops the start with the setting named (``SettingsError``): the models' specs, the
feature recipe, the label rules, the mappings, and the web token (read from its file once, never
in the repr). Keeps nothing else: no module reads a global config; the worker
(``app/worker.py``) builds one and hands it to each part. Pure: no faust, mode or aiokafka.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from app.contracts.mapping import EventMapping, LabelMapping
from app.features.recipe import Recipe
from app.models.drift import DriftRule
from app.models.label_rules import label_check
from app.models.promotion import PromotionRule
from app.models.spec import ModelSpec
from app.settings import Settings, SettingsError


@dataclass(frozen=True)
class Config:
    """The settings' values (read as attributes: ``config.partitions``) and what is parsed from
    them: the model specs, the recipe, the label check and the mappings.

    >>> config = Config.build(Settings(model="LogisticRegression; GaussianNB", partitions=3))
    >>> [s.name for s in config.specs], config.partitions, config.check_label(2)
    (['LogisticRegression', 'GaussianNB'], 3, 'y must be true/false (or 1/0) ... got 2; ...')
    """

    settings: Settings
    #: the models every shard runs, in the order the setting names them
    specs: tuple[ModelSpec, ...]
    #: the features keyed events get (the config file's spec, or the default one)
    recipe: Recipe
    #: what is wrong with a label for these models (None: nothing)
    check_label: Callable[[Any], str | None]
    #: how a message of a team's own shape maps to an event / a label (None: streamlearn's)
    event_mapping: EventMapping | None
    label_mapping: LabelMapping | None
    #: when a challenger becomes a shard's champion (None: by command only)
    promotion: PromotionRule | None = None
    #: the drift detectors on the models' errors, and what a drift does (None: none)
    drift: DriftRule | None = None
    #: the label of events never labelled within the TTL (``(value,)``; None: they are dropped)
    label_default: tuple | None = None
    #: the token every request to the web port must carry ("": none asked): the setting, or the
    #: first line of STREAMLEARN_WEB_TOKEN_FILE, read once; never in the repr
    web_token: str = field(default="", repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Config:
        """Parse everything ``settings`` names, once (a ``SettingsError`` names the setting)."""
        specs = tuple(settings.specs)
        return cls(
            settings=settings,
            specs=specs,
            recipe=settings.recipe,
            check_label=label_check(list(specs)),
            event_mapping=settings.event_mapping,
            label_mapping=settings.label_mapping,
            promotion=settings.promotion,
            drift=settings.drift,
            label_default=_label_default(settings, label_check(list(specs))),
            web_token=settings.read_web_token(),
        )

    def __post_init__(self) -> None:
        # the settings' values as this object's own attributes: read as fast as a field (the
        # engine reads some per event)
        for f in fields(self.settings):
            if not hasattr(type(self), f.name) and f.name not in self.__dataclass_fields__:
                object.__setattr__(self, f.name, getattr(self.settings, f.name))

    def __getattr__(self, name: str) -> Any:
        # only called for names not found above: the settings' derived values and methods
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.settings, name)

    @property
    def exactly_once(self) -> bool:
        """STREAMLEARN_PROCESSING_GUARANTEE=exactly_once: each shard's output in transactions."""
        return self.settings.processing_guarantee == "exactly_once"

    def internal(self, name: str) -> str:
        """The name of one of the app's own topics: ``<id>-<name>``."""
        return f"{self.settings.id}-{name}"


def _label_default(settings: Settings, check: Callable[[Any], str | None]) -> tuple | None:
    """STREAMLEARN_LABEL_DEFAULT, checked as a label of these models."""
    default = settings.label_default_value
    if default is not None and (problem := check(default[0])) is not None:
        raise SettingsError(f"{settings.named('label_default')}: {problem}")
    return default
