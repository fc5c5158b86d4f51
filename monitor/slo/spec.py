"""SLO specifications: objective, period and one service-level indicator (SLI).

Four SLI kinds exist. ``quality`` and ``drift`` are event-based and computed by segmon
itself over event-time windows (see :mod:`monitor.slo.burn`); ``availability`` and
``latency`` describe the production inference service's own operational SLOs and are
turned into Prometheus rules over *its* metrics (see :mod:`monitor.prometheus.rules`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from monitor.errors import NotFoundError
from monitor.slo.duration import format_duration, parse_duration
from monitor.slo.policy import (
    DEFAULT_POLICY,
    AlertPolicy,
    ResolvedPolicy,
    Severity,
    UnreachableTiers,
    resolve_tiers,
)

__all__ = [
    "SLI",
    "AvailabilitySLI",
    "DriftSLI",
    "LatencySLI",
    "QualitySLI",
    "SLOConfig",
    "SLOSpec",
    "default_slos",
]

_NAME = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
_METRIC = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
_LABEL = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
# One or more label matchers separated by commas, e.g. job="inference",route!="/healthz".
_MATCHER = r'[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"'
_SELECTOR = re.compile(rf"^(?:{_MATCHER}(?:\s*,\s*{_MATCHER})*)?$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QualitySLI(_Frozen):
    """Mask quality: an evaluated or shadow-scored instance is good when matched at IoU ≥ threshold.

    Bad events are missed ground-truth instances, spurious predictions and matches whose
    IoU is below ``iou_threshold``.

    Examples
    --------
    >>> QualitySLI(source="shadow", class_name="car").iou_threshold
    0.5
    """

    kind: Literal["quality"] = "quality"
    source: Literal["holdout", "shadow"] = "holdout"
    class_name: str | None = None
    iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0)


class DriftSLI(_Frozen):
    """Input stability: a drift check is bad when it flags drift on ``feature_family``.

    Examples
    --------
    >>> DriftSLI(feature_family="image_embedding").kind
    'drift'
    """

    kind: Literal["drift"] = "drift"
    feature_family: str = Field(min_length=1)


class _ServiceSLI(_Frozen):
    selector: str = Field(
        default="",
        description='Extra label matchers for the service series, e.g. job="inference".',
    )

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        if not _SELECTOR.fullmatch(value.strip()):
            raise ValueError(
                f'invalid label selector {value!r}: expected matchers like job="inference"'
            )
        return value.strip()


class AvailabilitySLI(_ServiceSLI):
    """Availability of the production inference service from its request counter.

    A request is bad when its ``status_label`` matches ``error_status_regex``.

    Examples
    --------
    >>> AvailabilitySLI(selector='job="inference"').metric
    'http_requests_total'
    """

    kind: Literal["availability"] = "availability"
    metric: str = Field(default="http_requests_total", pattern=_METRIC)
    status_label: str = Field(default="code", pattern=_LABEL)
    error_status_regex: str = Field(default="5..", min_length=1)


class LatencySLI(_ServiceSLI):
    """Latency of the production inference service from its latency histogram.

    A request is good when it falls into the bucket ``le=threshold_le`` of
    ``<metric>_bucket``; the total is ``<metric>_count``.

    Examples
    --------
    >>> s = LatencySLI(threshold_le="0.25")
    >>> s.bucket_metric, s.count_metric
    ('http_request_duration_seconds_bucket', 'http_request_duration_seconds_count')
    """

    kind: Literal["latency"] = "latency"
    metric: str = Field(default="http_request_duration_seconds", pattern=_METRIC)
    threshold_le: str = Field(default="0.5", pattern=r"^[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?$")

    @property
    def bucket_metric(self) -> str:
        """Name of the histogram's bucket series."""
        return f"{self.metric}_bucket"

    @property
    def count_metric(self) -> str:
        """Name of the histogram's count series."""
        return f"{self.metric}_count"


SLI = Annotated[
    QualitySLI | DriftSLI | AvailabilitySLI | LatencySLI,
    Field(discriminator="kind"),
]


class SLOSpec(_Frozen):
    """One service-level objective.

    Parameters
    ----------
    name
        Lower-case kebab-case identifier; it becomes the ``slo`` / ``sloth_slo`` label.
    objective
        Target fraction of good events, strictly between 0 and 1 (e.g. ``0.99``).
    period
        Error-budget period as a duration string (``"30d"``) or timedelta.
    sli
        What counts as a good and a bad event.
    min_events
        Per-window guard: a window with fewer events never alerts.
    page, ticket
        Whether the page (fast burn) and ticket (slow burn) alerts are generated.
    service
        The ``sloth_service`` label; ``segmon`` for segmon's own SLIs.
    unreachable_tiers
        A page or ticket tier whose factor is at least the highest burn rate the
        objective allows (``1 / (1 - objective)``) can never fire. ``error`` (default)
        refuses the SLO, naming the tier; ``cap`` lowers the factor to 0.9 of the
        maximum (the alert's annotations say so); ``drop`` leaves the tier out.

    Examples
    --------
    >>> s = SLOSpec(name="mask-quality", objective=0.95, period="28d", sli=QualitySLI())
    >>> s.period, round(s.error_budget, 4), s.computed_by_segmon
    (datetime.timedelta(days=28), 0.05, True)
    >>> SLOSpec(name="x", objective=0.9, period="1 month", sli=QualitySLI())
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for SLOSpec
    period
      Value error, invalid duration '1 month': expected e.g. '5m', '6h', '30d' ...
    >>> SLOSpec(name="x", objective=0.9, sli=QualitySLI())
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for SLOSpec
      Value error, SLO 'x': the page tier 14.4x over 1h and 5m can never fire: at objective 0.9 ...
    >>> capped = SLOSpec(name="x", objective=0.9, sli=QualitySLI(), unreachable_tiers="cap")
    >>> [a.describe() for a in capped.alert_policy().adjustments]
    ['page tier 1h/5m capped from 14.4x to 9x (0.9 of the maximum burn rate 10)']
    """

    name: str = Field(pattern=_NAME, max_length=63)
    description: str = ""
    objective: float = Field(gt=0.0, lt=1.0)
    period: timedelta = timedelta(days=30)
    sli: SLI
    min_events: int = Field(default=20, ge=1)
    page: bool = True
    ticket: bool = True
    service: str = Field(default="segmon", pattern=_NAME)
    unreachable_tiers: UnreachableTiers = "error"

    @field_validator("period", mode="before")
    @classmethod
    def _parse_period(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("period")
    @classmethod
    def _check_period(cls, value: timedelta) -> timedelta:
        format_duration(value)  # raises for non-positive or fractional-second periods
        if value < timedelta(days=1):
            raise ValueError(f"period {format_duration(value)!r} is shorter than one day")
        return value

    @field_serializer("period")
    def _write_period(self, value: timedelta) -> str:
        return format_duration(value)

    @model_validator(mode="after")
    def _tiers_can_fire(self) -> Self:
        self.alert_policy()  # raises UnreachableTierError (a ValueError) under "error"
        return self

    @property
    def severities(self) -> tuple[Severity, ...]:
        """The burn-rate alerts this SLO generates: ``page`` and/or ``ticket``."""
        both: tuple[Severity, Severity] = ("page", "ticket")
        return tuple(s for s in both if getattr(self, s))

    def alert_policy(self, policy: AlertPolicy = DEFAULT_POLICY) -> ResolvedPolicy:
        """Return the page/ticket tiers of ``policy`` for this SLO, checked against its objective.

        Raises
        ------
        UnreachableTierError
            When a tier can never fire and ``unreachable_tiers`` is ``error``.
        """
        return resolve_tiers(
            policy,
            slo=self.name,
            objective=self.objective,
            severities=self.severities,
            unreachable=self.unreachable_tiers,
        )

    @property
    def error_budget(self) -> float:
        """Allowed fraction of bad events, ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def computed_by_segmon(self) -> bool:
        """True for quality and drift SLIs (segmon exports their window gauges)."""
        return isinstance(self.sli, QualitySLI | DriftSLI)

    @property
    def sloth_id(self) -> str:
        """Sloth's ``sloth_id`` label: ``<service>-<name>``."""
        return f"{self.service}-{self.name}"

    @property
    def period_label(self) -> str:
        """The period as a window label, e.g. ``"30d"``."""
        return format_duration(self.period)


def default_slos() -> list[SLOSpec]:
    """Return the default SLO set: mask quality, drift and the inference service's SLOs.

    Returns
    -------
    list of SLOSpec
        Five SLOs with conservative objectives; tune them in the config.

    Examples
    --------
    >>> [s.name for s in default_slos()]  # doctest: +NORMALIZE_WHITESPACE
    ['mask-quality-holdout', 'mask-quality-shadow', 'image-drift', 'inference-availability',
     'inference-latency']
    """
    return [
        SLOSpec(
            name="mask-quality-holdout",
            description="Labeled holdout instances matched at IoU >= 0.5.",
            objective=0.9,
            sli=QualitySLI(source="holdout", iou_threshold=0.5),
            # Quality budgets are wide (a good model still misses ~8 % of instances), so
            # the burn rate tops out at 10: the 14.4x page tier is capped to 9x (90 % of
            # the events bad over 1h and 5m, a real outage); 6x over 6h and 30m stays.
            unreachable_tiers="cap",
        ),
        SLOSpec(
            name="mask-quality-shadow",
            description="Production instances the reference model agrees with at IoU >= 0.5.",
            objective=0.85,
            sli=QualitySLI(source="shadow", iou_threshold=0.5),
            unreachable_tiers="cap",  # max burn 6.67: 14.4x becomes 6x (90 % bad)
        ),
        SLOSpec(
            name="image-drift",
            description="Drift checks on image embeddings that flag no drift.",
            objective=0.95,
            sli=DriftSLI(feature_family="image_embedding"),
            # Drift checks run about hourly: few events per window, so guard at 1 and
            # only open tickets (a page on an hourly signal would be noise).
            min_events=1,
            page=False,
        ),
        SLOSpec(
            name="inference-availability",
            description="Inference requests answered without a 5xx status.",
            objective=0.999,
            sli=AvailabilitySLI(selector='job="inference"'),
            service="inference",
        ),
        SLOSpec(
            name="inference-latency",
            description="Inference requests answered within 500 ms.",
            objective=0.99,
            sli=LatencySLI(selector='job="inference"', threshold_le="0.5"),
            service="inference",
        ),
    ]


class SLOConfig(_Frozen):
    """The list of SLOs; names must be unique.

    Examples
    --------
    >>> cfg = SLOConfig()
    >>> len(cfg.slos), cfg.get("image-drift").sli.kind
    (5, 'drift')
    """

    slos: list[SLOSpec] = Field(default_factory=default_slos)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for slo in self.slos:
            if slo.name in seen:
                raise ValueError(f"duplicate SLO name {slo.name!r}")
            seen.add(slo.name)
        return self

    def get(self, name: str) -> SLOSpec:
        """Return the SLO called ``name``.

        Raises
        ------
        NotFoundError
            If there is no such SLO (the message names it).
        """
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise NotFoundError(f"no SLO named {name!r}")
