"""Which labels the configured models can learn, checked before any of them sees an event.

``app.contracts.records`` checks that a label is a number, string or bool. Whether the models can
learn it depends on their task, and River finds out half-way through ``learn_one``: a pipeline's
scaler has already learned the features, and the metrics have already scored the label, when its
classifier raises on a label it cannot read. So the label is checked against the task first, and
an event or label that fails goes to its dead-letter topic with the reason, before any model,
metric or window counts it:

* regressors learn numbers (not bools);
* binary classifiers (River classifiers that are not multiclass, such as LogisticRegression)
  learn ``true``/``false``, or ``1``/``0`` (``1.0``/``0.0`` too);
* multiclass classifiers learn any label (numbers, strings, bools).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.models.spec import ModelSpec

#: A label check: what is wrong with a label for the models (None: they can learn it).
LabelCheck = Callable[[Any], "str | None"]


def label_check(specs: list[ModelSpec]) -> LabelCheck:
    """The check of labels for ``specs`` (all classifiers, or all regressors).

    >>> from app.models.spec import parse_specs
    >>> check = label_check(parse_specs("LogisticRegression"))
    >>> check(True), check(0), check(1.0)
    (None, None, None)
    >>> print(check("yes"))  # doctest: +ELLIPSIS
    y must be true/false (or 1/0) for the binary classifier LogisticRegression, got 'yes'; ...
    >>> label_check(parse_specs("HoeffdingTreeClassifier"))("brickface") is None
    True
    >>> print(label_check(parse_specs("LinearRegression"))(True))
    y must be a number for the regressor LinearRegression, got True
    """
    if not specs[0].is_classifier:
        names = ", ".join(s.name for s in specs)

        def number(y: Any) -> str | None:
            kind = type(y)
            if kind is float or kind is int:
                return None
            return f"y must be a number for the regressor {names}, got {y!r}"

        return number
    names = _binary_classifiers(specs)
    if not names:
        return _any_label

    def boolean(y: Any) -> str | None:
        kind = type(y)
        if kind is bool or ((kind is int or kind is float) and (y == 0 or y == 1)):
            return None
        return (
            f"y must be true/false (or 1/0) for the binary classifier {names}, got {y!r}; "
            "name a multiclass classifier in STREAMLEARN_MODEL for other labels"
        )

    return boolean


def _any_label(y: Any) -> str | None:
    return None


def _binary_classifiers(specs: list[ModelSpec]) -> str:
    """The names of the specs that classify two classes only, joined ("": none)."""
    return ", ".join(s.name for s in specs if not s.multiclass)


def task_problem(task: str, specs: list[ModelSpec]) -> str | None:
    """What stops ``specs`` from learning a dataset of River's ``task`` (None: nothing).

    >>> from app.models.spec import parse_specs
    >>> print(task_problem("Multi-class classification", parse_specs("LogisticRegression")))
    ... # doctest: +ELLIPSIS
    a Multi-class classification dataset, but LogisticRegression is a binary classifier: ...
    >>> task_problem("Binary classification", parse_specs("HoeffdingTreeClassifier")) is None
    True
    """
    names = ", ".join(s.name for s in specs)
    classifies = specs[0].is_classifier
    if task == "Regression" and classifies:
        return f"a Regression dataset, but {names} classifies: name a River regressor"
    if task.endswith("classification") and not classifies:
        return f"a {task} dataset, but {names} is a regressor: name a River classifier"
    if task == "Multi-class classification":
        binary = _binary_classifiers(specs)
        if binary:
            return (
                f"a {task} dataset, but {binary} is a binary classifier: its "
                "events would go to the dead-letter topic; name a multiclass classifier "
                "(e.g. HoeffdingTreeClassifier) in STREAMLEARN_MODEL"
            )
    return None
