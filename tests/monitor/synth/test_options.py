"""Synth options: drift knobs parsed from the command line, the config validated."""

from __future__ import annotations

import pytest

from monitor.errors import InvalidInputError
from monitor.synth import DRIFT_KNOBS, SynthConfig, parse_drift


def test_parse_drift_and_config_validation() -> None:
    assert parse_drift([]) == {}
    assert parse_drift(["classmix=1", "brightness=0"]) == {"brightness": 0.0, "classmix": 1.0}
    for item, fragment in [
        ("fog=0.1", "fog"),
        ("blur", "blur"),
        ("blur=x", "'x'"),
        ("blur=1.5", "blur"),
        ("noise=-0.1", "noise"),
        ("noise=nan", "noise"),
    ]:
        with pytest.raises(InvalidInputError, match=fragment):
            parse_drift([item])
    with pytest.raises(InvalidInputError, match="more than once"):
        parse_drift(["blur=0.1", "blur=0.2"])
    with pytest.raises(InvalidInputError, match="'haze'"):
        SynthConfig(n_images=1, seed=0, drift={"haze": 0.5})  # type: ignore[dict-item]  # on purpose: no such knob
    with pytest.raises(InvalidInputError, match="True"):
        SynthConfig(n_images=1, seed=0, drift={"blur": True})
    with pytest.raises(InvalidInputError, match="n_images"):
        SynthConfig(n_images=-1, seed=0)
    assert set(DRIFT_KNOBS) == {
        "brightness",
        "contrast",
        "blur",
        "noise",
        "scale",
        "classmix",
        "novel",
    }
