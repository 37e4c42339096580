"""Fuzzed configuration files: every one is accepted or refused with a ConfigError naming
the file (and, for a bad value, the key); nothing else ever escapes (no traceback)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.errors import ConfigError
from supervisor.config import parse_config

SOURCE = Path("/etc/wasup/fuzz.yaml")

SECTIONS: dict[str, list[str]] = {
    "http": ["listen", "api_key_file", "api_key_env", "qr_requires_key", "max_body",
             "header_timeout", "body_timeout", "idle_timeout", "max_connections"],
    "browser": ["executable", "headless", "extra_args", "launch_timeout", "close_timeout",
                "liveness_timeout", "max_concurrent_launches", "sandbox"],
    "supervision": ["stop_timeout", "stall_timeout", "backoff", "breaker", "budget"],
    "simulator": ["enabled", "listen", "fast"],
    "defaults": ["start", "url", "qr_idle_timeout"],
}  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["5s", "10 min", "-1s", "64KiB", "1e400", "always", "on", "off",
                     "127.0.0.1:0", "[::1]:99999", "{simulator}/", "https://x/", "\x00", "é"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["state_dir"] = draw(st.one_of(st.just("/var/lib/wasup"), values))
    for section, keys in SECTIONS.items():
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
            doc[section] = {key: draw(values) for key in chosen}
    if draw(st.booleans()):
        doc["instances"] = draw(
            st.lists(
                st.dictionaries(st.sampled_from(["id", "start", "url", "qr_idle_timeout", "x"]),
                                values, max_size=4),
                max_size=4,
            )
        )  # fmt: skip
    if draw(st.booleans()):
        doc[draw(st.text(max_size=8))] = draw(values)
    return doc


def _check(text: str) -> None:
    try:
        parse_config(text, SOURCE)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(SOURCE)), message
        assert "Traceback" not in message and len(message) < 2000, message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_fuzzed_config_documents_are_accepted_or_refused_clearly(doc: dict[str, Any]) -> None:
    _check(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzzed_config_text_is_accepted_or_refused_clearly(text: str) -> None:
    _check(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("state_dir: s\nbrowser: {liveness_timeout: soon}\n", "browser.liveness_timeout"),
        ("state_dir: s\nhttp: {idle_timeout: [1]}\n", "http.idle_timeout"),
        ('state_dir: s\ninstances: [{id: a, url: "https://a\\0b/"}]\n', "instances[0].url"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_config(text, SOURCE)
