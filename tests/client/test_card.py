"""Each card problem the signing library reports becomes its own sentence (no traceback, no
PIN). Wrong PIN, missing token and key are also run against SoftHSM2 in
tests/e2e/test_desk_tool.py; a locked PIN cannot be produced there (SoftHSM2 keeps no retry
counter), so its sentence is checked here."""

from __future__ import annotations

import pytest

from gateway.client.card import card_error
from gateway.client.messages import text
from signing.errors import (
    ConfigurationError,
    KeyAccessError,
    KeyNotFound,
    PinIncorrect,
    PinLocked,
    SigningError,
    TokenError,
    TokenNotFound,
)


@pytest.mark.parametrize(("error", "expected"), [
    (PinIncorrect("wrong"), text("card.pin_incorrect")),
    (PinLocked("locked"), text("card.pin_locked")),
    (TokenNotFound("no token 'x'"), text("card.no_token", detail="no token 'x'")),
    (KeyNotFound("no key 'k'"), text("card.no_key", detail="no key 'k'")),
    (ConfigurationError("cannot load m.so"), text("card.module", detail="cannot load m.so")),
    (KeyAccessError("no PIN for key 'k'"), text("card.no_pin")),
    (TokenError("device error"), text("card.error", detail="device error")),
])
def test_each_card_problem_has_its_sentence(error: SigningError, expected: str) -> None:
    assert card_error(error).message == expected
    assert card_error(error).exit_code == 4
