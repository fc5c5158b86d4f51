from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from monitor.errors import NotFoundError
from monitor.slo.spec import (
    AvailabilitySLI,
    DriftSLI,
    LatencySLI,
    QualitySLI,
    SLOConfig,
    SLOSpec,
)


def test_period_strings_parse_and_serialise_back() -> None:
    s = SLOSpec(name="a", objective=0.99, period="4w", sli=QualitySLI())
    assert s.period == timedelta(days=28)
    assert s.model_dump()["period"] == "28d"
    assert SLOSpec.model_validate(s.model_dump()) == s


@pytest.mark.parametrize("bad", ["30 days", "month", "", "5x", "0d"])
def test_bad_period_strings_are_named(bad: str) -> None:
    with pytest.raises(ValidationError, match=repr(bad)):
        SLOSpec(name="a", objective=0.99, period=bad, sli=QualitySLI())


def test_short_period_is_rejected() -> None:
    with pytest.raises(ValidationError, match="'6h' is shorter than one day"):
        SLOSpec(name="a", objective=0.99, period="6h", sli=QualitySLI())


@pytest.mark.parametrize("objective", [0.0, 1.0, -0.5, 1.5])
def test_objective_must_be_strictly_between_zero_and_one(objective: float) -> None:
    with pytest.raises(ValidationError, match="objective"):
        SLOSpec(name="a", objective=objective, sli=QualitySLI())


def test_sli_is_chosen_by_kind_from_plain_config() -> None:
    cfg = SLOConfig.model_validate(
        {
            "slos": [
                {
                    "name": "car-quality",
                    "objective": 0.95,
                    "sli": {"kind": "quality", "source": "shadow", "class_name": "car"},
                },
                {"name": "d", "objective": 0.99, "sli": {"kind": "drift", "feature_family": "x"}},
                {"name": "av", "objective": 0.999, "sli": {"kind": "availability"}},
                {
                    "name": "lat",
                    "objective": 0.99,
                    "sli": {"kind": "latency", "metric": "inference_seconds", "threshold_le": "1"},
                },
            ]
        }
    )
    kinds = [type(s.sli) for s in cfg.slos]
    assert kinds == [QualitySLI, DriftSLI, AvailabilitySLI, LatencySLI]
    assert cfg.get("car-quality").sli == QualitySLI(source="shadow", class_name="car")
    latency = cfg.get("lat").sli
    assert isinstance(latency, LatencySLI)
    assert latency.bucket_metric == "inference_seconds_bucket"
    assert [s.computed_by_segmon for s in cfg.slos] == [True, True, False, False]


def test_unknown_sli_kind_and_bad_selector_are_rejected() -> None:
    with pytest.raises(ValidationError, match="kind"):
        SLOSpec.model_validate({"name": "a", "objective": 0.9, "sli": {"kind": "vibes"}})
    with pytest.raises(ValidationError, match="job=inference"):
        AvailabilitySLI(selector="job=inference")
    assert AvailabilitySLI(selector=' job="a", route!~"/health.*" ').selector.startswith("job")


def test_duplicate_names_and_missing_lookup() -> None:
    a = SLOSpec(name="a", objective=0.99, sli=QualitySLI())
    with pytest.raises(ValidationError, match="duplicate SLO name 'a'"):
        SLOConfig(slos=[a, a])
    with pytest.raises(NotFoundError, match="'zzz'"):
        SLOConfig(slos=[a]).get("zzz")


def test_names_must_be_label_safe() -> None:
    with pytest.raises(ValidationError, match="name"):
        SLOSpec(name="Mask Quality", objective=0.9, sli=QualitySLI())


def test_default_config_round_trips_and_has_every_kind() -> None:
    cfg = SLOConfig()
    again = SLOConfig.model_validate(cfg.model_dump(mode="json"))
    assert again == cfg
    assert {s.sli.kind for s in cfg.slos} == {"quality", "drift", "availability", "latency"}
