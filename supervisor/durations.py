"""Reading durations (``90s``, ``5m``) and sizes (``64KiB``) written by people.

Both parsers raise :class:`ValueError` with a message that lists the accepted forms; the
config loader adds the file and key. Numbers alone mean seconds (durations) or bytes (sizes).
"""

from __future__ import annotations

import math
import re

DURATION_UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}

DURATION_FORMS = "a number of seconds, or a number with a unit: 500ms, 90s, 5m, 6h, 1d"
SIZE_FORMS = "a number of bytes, or a number with a unit: 512B, 64KiB, 1MiB, 1.5GiB, 64KB, 1MB, 2GB"

# No space between number and unit, one unit only: "10 min" and "1h30m" are refused rather
# than guessed at.
_DURATION = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)?")
_SIZE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>B|KB|KiB|MB|MiB|GB|GiB)?")
_SIGNED = re.compile(r"-[0-9.]+[A-Za-z]*")


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (an int, a float or a string such as ``"90s"``); never negative."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write {DURATION_FORMS}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _DURATION.fullmatch(text)
        if match is None:
            if _SIGNED.fullmatch(text):
                raise ValueError(f"{value!r} is negative; durations must be 0 or more")
            raise ValueError(f"{value!r} is not a duration; write {DURATION_FORMS}")
        seconds = float(match["num"]) * DURATION_UNITS[match["unit"] or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration; write {DURATION_FORMS}")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; durations must be 0 or more")
    return seconds


def parse_size(value: object) -> int:
    """Bytes in ``value`` (an int or a string such as ``"64KiB"``); never negative."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; write {SIZE_FORMS}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        text = value.strip()
        match = _SIZE.fullmatch(text)
        if match is None:
            if _SIGNED.fullmatch(text):
                raise ValueError(f"{value!r} is negative; sizes must be 0 or more")
            raise ValueError(f"{value!r} is not a size; write {SIZE_FORMS}")
        if "." in match["num"] and not match["unit"]:
            raise ValueError(f"{value!r} is not a whole number of bytes; write {SIZE_FORMS}")
        size = int(float(match["num"]) * SIZE_UNITS[match["unit"] or "B"])
    else:
        raise ValueError(f"{value!r} is not a size; write {SIZE_FORMS}")
    if size < 0:
        raise ValueError(f"{value!r} is negative; sizes must be 0 or more")
    return size


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the units :func:`parse_duration` reads."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        count = seconds / DURATION_UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    millis = seconds * 1000
    if millis == int(millis):
        return f"{int(millis)}ms"
    return f"{seconds:g}s"
