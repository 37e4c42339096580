"""QR refs, pairing codes and QR module matrices, shaped like WhatsApp Web's."""

from __future__ import annotations

import base64
import re
import secrets
from typing import TypeGuard

import qrcode

#: Alphabet of WhatsApp's 8-character pairing codes (no 0, I, O or U).
PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
PAIRING_CODE_LENGTH = 8

_DEVICE_ID = re.compile(r"^[A-Za-z0-9]{4,64}$")
_B64_KEY = re.compile(r"^[A-Za-z0-9+/]{43}=$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,20}$")


def new_ref() -> str:
    """A fresh server ref, the first field of ``data-ref`` (``2@`` and base64, like WhatsApp's)."""
    return "2@" + base64.b64encode(secrets.token_bytes(36)).decode()


#: What ``data-ref`` may carry besides its five fields, by ``ref_style``.
WAME_PREFIX = "https://wa.me/settings/linked_devices#"
FAQ_FIELD = "https://faq.whatsapp.com/r/ld"


def styled_ref(data_ref: str, style: str) -> str:
    """``data_ref`` written the way ``style`` (``plain``, ``faq``, ``wame``) says."""
    if style == "faq":
        return f"{data_ref},{FAQ_FIELD}"
    if style == "wame":
        return WAME_PREFIX + data_ref
    return data_ref


def ref_of(text: str) -> str:
    """The ref in ``text``, which is a bare ref or a whole ``data-ref`` string."""
    text = text.strip()
    text = text.removeprefix(WAME_PREFIX)
    return text.split(",", 1)[0]


def is_device_id(text: object) -> TypeGuard[str]:
    """Whether ``text`` looks like the device id a page says hello with."""
    return isinstance(text, str) and _DEVICE_ID.match(text) is not None


def is_key(text: object) -> bool:
    """Whether ``text`` looks like a base64 32-byte key as the page generates them."""
    return isinstance(text, str) and _B64_KEY.match(text) is not None


def new_pairing_code() -> str:
    """A fresh pairing code: 8 characters of :data:`PAIRING_ALPHABET`, no dash."""
    return "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))


def normalize_pairing_code(text: str) -> str | None:
    """``ABCD-EFGH``, ``abcdefgh`` or ``ABCD EFGH`` as ``ABCDEFGH``; None if it cannot be one."""
    code = re.sub(r"[\s-]", "", text).upper()
    if len(code) != PAIRING_CODE_LENGTH or any(c not in PAIRING_ALPHABET for c in code):
        return None
    return code


def is_phone_number(text: object) -> bool:
    """Whether ``text`` could be an international phone number (7 to 15 digits)."""
    if not isinstance(text, str) or not _PHONE.match(text.strip()):
        return False
    return 7 <= sum(c.isdigit() for c in text) <= 15


def qr_matrix(data: str) -> list[str]:
    """The QR code of ``data`` as rows of ``0``/``1`` (dark), without quiet zone.

    The page draws it; computing it here keeps the page free of a QR library and makes the
    drawn code exactly the one Python's ``qrcode`` makes, which tests decode.
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=0)
    code.add_data(data)
    code.make(fit=True)
    return ["".join("1" if dark else "0" for dark in row) for row in code.get_matrix()]
