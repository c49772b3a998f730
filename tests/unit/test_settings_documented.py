"""Every setting is in the README's configuration table, with its variable and its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iotledger.settings import _FIELDS, SettingsError, load_settings

README = Path(__file__).parents[2] / "README.md"


def _table_rows() -> list[str]:
    text = README.read_text()
    table = text[text.index("| variable | `config.toml` key |") :]
    return [line for line in table.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("field", sorted(_FIELDS))
def test_the_readme_table_names_the_variable_and_the_key_of_every_setting(field: str) -> None:
    _, section, key = _FIELDS[field]
    rows = [row for row in _table_rows() if f"`IOTLEDGER_{field.upper()}`" in row]
    assert rows, f"IOTLEDGER_{field.upper()} is not in the README's configuration table"
    assert f"[{section}]" in rows[0]
    assert re.search(rf"\b{key}`", rows[0]), f"[{section}] {key} is not in its README row"


def test_the_operability_settings_have_their_defaults_and_read_the_environment() -> None:
    defaults = load_settings(environ={})
    assert (defaults.ready_max_lag, defaults.metrics_port) == (10000, None)
    assert (defaults.log_format, defaults.access_log) == ("text", False)
    given = load_settings(
        environ={
            "IOTLEDGER_READY_MAX_LAG": "0",
            "IOTLEDGER_METRICS_PORT": "9100",
            "IOTLEDGER_LOG_FORMAT": "JSON",
            "IOTLEDGER_ACCESS_LOG": "true",
        }
    )
    assert (given.ready_max_lag, given.metrics_port) == (0, 9100)
    assert (given.log_format, given.access_log) == ("json", True)


def test_a_log_format_other_than_text_or_json_is_refused_in_one_line() -> None:
    refused = r"^IOTLEDGER_LOG_FORMAT: xml is not one of text, json$"
    with pytest.raises(SettingsError, match=refused):
        load_settings(environ={"IOTLEDGER_LOG_FORMAT": "xml"})
