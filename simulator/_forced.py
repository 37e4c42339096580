"""What the control API can force on every page: screens, and pairing-code error dialogs."""

from __future__ import annotations

from simulator._errors import BadRequest

#: Screens ``POST /_sim/screen`` can put on every page, in place of whatever it showed.
SCREEN_KINDS = frozenset(
    {
        "tos_block",
        "smb_tos_block",
        "temp_ban",
        "phone_outdated",
        "unsupported_browser",
        "call_takeover",
        "proxyblock",
        "service_unavailable",
        "connecting",
        "foreign",
    }
)
#: Error dialogs a pairing-code request can meet.
PAIRING_ERRORS = frozenset({"too_many_attempts", "something_went_wrong", "limited_availability"})


def check_screen(kind: str | None) -> None:
    """Raise :class:`BadRequest` unless ``kind`` is one of :data:`SCREEN_KINDS` or None."""
    if kind is not None and kind not in SCREEN_KINDS:
        raise BadRequest(f"screen must be one of {sorted(SCREEN_KINDS)} or null, got {kind!r}")


def check_pairing_error(error: str | None) -> None:
    """Raise :class:`BadRequest` unless ``error`` is one of :data:`PAIRING_ERRORS` or None."""
    if error is not None and error not in PAIRING_ERRORS:
        raise BadRequest(f"error must be one of {sorted(PAIRING_ERRORS)} or null, got {error!r}")
