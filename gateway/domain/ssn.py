"""The SSN format: opaque to callers, configurable, with a check digit.

The Fund does not publish the SSN's length, so the format is configuration: a fixed prefix, a
zero-padded serial allocated from the database, and a Luhn check digit so that a mistyped SSN in
a search is caught before it reaches the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.errors import ValidationFailed


def luhn_check_digit(digits: str) -> str:
    total = 0
    # Doubling starts from the rightmost digit of the payload, because the check digit follows it.
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


# The contract's Ssn (xsd/gateway.xsd) is [0-9]{6,20}: a longer SSN could be neither answered
# nor searched for.
MAX_LENGTH = 20


@dataclass(frozen=True, slots=True)
class SsnFormat:
    prefix: str = "1"
    serial_digits: int = 11

    def __post_init__(self) -> None:
        # isascii: str.isdigit() also takes other scripts' digits and superscripts.
        if not (self.prefix.isascii() and self.prefix.isdigit()) \
                or not 4 <= self.serial_digits <= 18:
            raise ValueError("SSN prefix must be digits 0-9 and serial_digits 4..18")
        if self.length > MAX_LENGTH:
            raise ValueError(f"an SSN is at most {MAX_LENGTH} digits")

    @property
    def length(self) -> int:
        return len(self.prefix) + self.serial_digits + 1

    def format(self, serial: int) -> str:
        if serial < 1 or serial >= 10**self.serial_digits:
            raise ValueError("SSN serial out of range for the configured format")
        payload = f"{self.prefix}{serial:0{self.serial_digits}d}"
        return payload + luhn_check_digit(payload)

    def is_valid(self, ssn: str) -> bool:
        return (
            len(ssn) == self.length
            and ssn.isdigit()
            and ssn.startswith(self.prefix)
            and luhn_check_digit(ssn[:-1]) == ssn[-1]
        )

    def check(self, ssn: str) -> str:
        if not self.is_valid(ssn):
            raise ValidationFailed("not a valid SSN", code="Client.Validation.Ssn", field="ssn")
        return ssn
