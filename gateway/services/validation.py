"""Input rules that need a library: Azerbaijani phone numbers (phonenumbers), e-mail syntax
(email-validator). Values come back normalised (E.164, normalised e-mail).

Phones are accepted as people type them (``050 123 45 67``, ``0501234567``, ``(012) 498-76-54``,
``+994 50 123 45 67``, surrounding spaces): parsed as Azerbaijani numbers and stored in E.164
(``+994501234567``). A mobile field (``mobilePhone``, ``asanPhone``, ``phone``) refuses a
landline number; ``landlinePhone`` takes any valid Azerbaijani number."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberType

from gateway.domain.errors import ValidationFailed
from gateway.domain.values import Address, Contacts

_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def _parse_az(raw: str, field: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(raw.strip(), "AZ")
    except NumberParseException as exc:
        raise ValidationFailed(
            f"{field}: not a phone number", code="Client.Validation.Phone", field=field
        ) from exc
    if number.country_code != 994 or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(
            f"{field}: not a valid Azerbaijani number", code="Client.Validation.Phone",
            field=field,
        )
    return number


def mobile_number(raw: str, field: str = "mobilePhone") -> str:
    number = _parse_az(raw, field)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValidationFailed(
            f"{field}: not an Azerbaijani mobile number", code="Client.Validation.Phone",
            field=field,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def landline_number(raw: str, field: str = "landlinePhone") -> str:
    number = _parse_az(raw, field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_address(raw: str, field: str = "email") -> str:
    try:
        # No DNS lookups: the gateway must not depend on the network to validate input.
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(
            f"{field}: {exc}", code="Client.Validation.Email", field=field
        ) from exc


def contacts(value: Contacts | None) -> Contacts | None:
    if value is None or value.is_empty():
        return None
    # Fields named by their contract path, as a schema refusal names them.
    return Contacts(
        mobile_phone=(mobile_number(value.mobile_phone, "contacts/mobilePhone")
                      if value.mobile_phone else None),
        landline_phone=(landline_number(value.landline_phone, "contacts/landlinePhone")
                        if value.landline_phone else None),
        email=email_address(value.email.strip(), "contacts/email") if value.email else None,
    )


def address(value: Address | None, field: str) -> Address | None:
    if value is None:
        return None
    for name in ("region", "city_or_district", "street", "house"):
        if not getattr(value, name).strip():
            raise ValidationFailed(
                f"{field}: {name} is required", code="Client.Validation.Address", field=field
            )
    return value
