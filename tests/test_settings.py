"""The settings class and the README's configuration table say the same thing."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from consumer.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_rows() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `(OCPP_[A-Z_]+)` \| (.+?) \| (.+?) \|$", README, flags=re.M)
    return {name: (default, meaning) for name, default, meaning in rows}


def test_readme_lists_every_option_with_its_default():
    """Every setting is in the README's table with the default the code uses, and nothing else is."""
    expected = {}
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        expected[f"OCPP_{name.upper()}"] = ("(unset)" if default is None else f"`{default}`", field.description)
    assert readme_rows() == expected


def test_topics_are_split_and_trimmed(monkeypatch):
    """OCPP_KAFKA_TOPICS is a comma-separated list; blanks around names do not matter."""
    monkeypatch.setenv("OCPP_KAFKA_TOPICS", " a.events , b.events,")
    assert Settings().topics == ["a.events", "b.events"]


@pytest.mark.parametrize(
    "variable, value",
    [("OCPP_KAFKA_TOPICS", " , "), ("OCPP_BATCH_MAX_RECORDS", "0"), ("OCPP_METRICS_PORT", "70000"),
     ("OCPP_KAFKA_AUTO_OFFSET_RESET", "newest"), ("OCPP_MAX_CLOCK_SKEW_SECONDS", "-1"),
     ("OCPP_BATCH_MAX_WAIT_MS", "0"), ("OCPP_KAFKA_FETCH_MAX_WAIT_MS", "60000"),
     ("OCPP_KAFKA_FETCH_MIN_BYTES", "0")],
)
def test_bad_values_are_refused(monkeypatch, variable, value):
    """Values the service cannot work with are refused at start, not discovered later."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
