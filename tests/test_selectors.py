"""Selectors and texts: built-in defaults, overrides from a file, errors naming file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import ConfigError
from actors.selectors import SELECTOR_KEYS, TEXT_KEYS, load_selectors


def test_defaults_cover_every_key_and_match_whatsapp_web() -> None:
    sel = load_selectors()
    assert set(sel.selectors) == set(SELECTOR_KEYS)
    assert set(sel.texts) == set(TEXT_KEYS)
    assert any("link-device-qr-code" in s for s in sel.selectors["qr"])
    assert "#pane-side" in sel.selectors["main"]
    assert sel.attributes == {
        "qr_ref_attribute": "data-ref",
        "pairing_code_attribute": "data-link-code",
    }
    assert json.loads(sel.to_json())["texts"]["use_here"] == ["Use here"]


def test_a_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text("texts:\n  use_here: ['Hier verwenden']\nselectors:\n  main: ['#side']\n")
    sel = load_selectors(path)
    assert sel.texts["use_here"] == ("Hier verwenden",)
    assert sel.selectors["main"] == ("#side",)
    assert sel.texts["conflict"] == load_selectors().texts["conflict"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("texts:\n  use_hear: ['x']\n", "texts: unknown key(s): use_hear"),
        ("colours: {}\n", "unknown top-level key(s): colours"),
        ("texts:\n  use_here: []\n", "texts.use_here: expected a non-empty list"),
        ("texts:\n  use_here: [3]\n", "texts.use_here: expected a non-empty list"),
        ("selectors:\n  qr_ref_attribute: ''\n", "selectors.qr_ref_attribute"),
        ("texts: [unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_files_are_refused_by_name(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_selectors(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read selectors file"):
        load_selectors(tmp_path / "nope.yaml")


def test_a_file_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    # A reload must get a ConfigError to log, not a UnicodeDecodeError that ends the daemon.
    path = tmp_path / "sel.yaml"
    path.write_bytes(b"texts:\n  use_here: ['\xff\xfe']\n")
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        load_selectors(path)
    assert str(path) in str(err.value)
