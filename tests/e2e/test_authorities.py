"""Insurer data (§2.1) and delegation of authority (§2.2), end to end.

The story of the manual: the director signs in with the seal-authority card, sees the insurer's
data, grants the deputy's e-signature card a dated authority (the director is on leave), and the
deputy registers an employee with their own card. Outside the period, after revocation, with
another card, for another insurer or without any authority, the deputy (or whoever) is refused
with the exact fault code, and a refused request writes nothing.

Everything is real: the gateway over HTTP, zeep clients with our signing plugin, the population
registry simulator, SQLite and PostgreSQL; the director's card is also a SoftHSM2 token.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from zeep.exceptions import Fault
from zeep.xsd.valueobjects import CompoundValue

from gateway.domain import calendar
from gateway.domain.model import REGISTRATION_ESERVICE
from gateway.soap.service import OPERATIONS
from persistence.tables import AuthorityEvent
from signing.parser import serialize
from signing.pkcs11 import Pkcs11Config, Pkcs11Signer
from signing.signer import Signer
from signing.testpki import TestPki, load_into_softhsm, write_softhsm_config
from signing.wsse import sign_envelope
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    SOAP_ENV,
    TNS,
    Stack,
    fault_code,
    find_person_payload,
    request_envelope,
    response_fault_code,
    sibling_stack,
)

DEPUTY_FIN = "3HN8B5Q"
EMPLOYEE_FIN = "7MX2C9R"
DIRECTOR_FIN = "6ZK4T2P"
NEW_HIRE_FIN = "5GH3J7K"  # in the population registry, no SSN yet
GOLDEN_VALID = Path(__file__).resolve().parents[1] / "contract" / "golden" / "valid"
XSD = Path(__file__).resolve().parents[2] / "xsd" / "gateway.xsd"
XS = "http://www.w3.org/2001/XMLSchema"


# -- helpers ----------------------------------------------------------------------------------


class Api:
    """``client.service`` answering with the response body: zeep hands back header and body
    when the WSDL declares output headers (the echoed X-Road headers); a body with one child is
    unwrapped to it, as zeep itself does when there are no headers."""

    def __init__(self, client: Any) -> None:
        self._service = client.service

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._service, operation)

        def call(**kwargs: Any) -> Any:
            answer = method(**kwargs)
            if isinstance(answer, CompoundValue) and "body" in answer and "header" in answer:
                answer = answer["body"]
            if isinstance(answer, CompoundValue) and len(answer.__values__) == 1:
                answer = next(iter(answer.__values__.values()))
            return answer

        return call


def api(stack: Stack, identity: str = "director", **kwargs: Any) -> Api:
    client, _ = stack.client(identity, **kwargs)
    return Api(client)


def today() -> date:
    return calendar.now().date()  # the gateway's calendar: Baku (UTC+4)


def card(stack: Stack, identity: str) -> str:
    return stack.pki.identity(identity).card_number


def refused(call: Callable[..., Any], **kwargs: Any) -> str:
    with pytest.raises(Fault) as info:
        call(**kwargs)
    return fault_code(info.value)


def grant(client: Any, fin: str, card_number: str | None, *, voen: str = DEMO_VOEN,
          valid_from: date | None = None, valid_to: date | None = None,
          trusted: bool = True, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "voen": voen, "eServiceCode": REGISTRATION_ESERVICE,
        "authorityType": "E_SIGNATURE_CARD", "cardNumber": card_number, "fin": fin,
        "validFrom": valid_from, "validTo": valid_to, "trusted": trusted,
    }
    values.update(extra)
    return client.GrantAuthority(**values)


def register(client: Any, fin: str = NEW_HIRE_FIN) -> Any:
    return client.SubmitRegistration(
        voen=DEMO_VOEN, documentType="ID_CARD", fin=fin, actualAddressDiffers=False
    )


def registry(client: Any, **filters: Any) -> Any:
    return client.ListAuthorities(voen=DEMO_VOEN, **filters)


def applications_total(client: Any) -> int:
    return int(client.SearchApplications(voen=DEMO_VOEN).total)


# -- the director's card on SoftHSM2 ----------------------------------------------------------


@pytest.fixture
def director_card(test_pki: TestPki, softhsm_module: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Signer]:
    """The director's key and certificate on a fresh SoftHSM2 token, as a Pkcs11Signer.

    A PKCS#11 module reads SOFTHSM2_CONF once per process, so when another fixture already
    pointed it at a token directory the new token goes there too; after creating it the module is
    re-initialised so this process sees it.
    """
    import pkcs11

    previous = os.environ.get("SOFTHSM2_CONF")
    if previous is None:
        os.environ["SOFTHSM2_CONF"] = str(write_softhsm_config(tmp_path_factory.mktemp("hsm")))
    label = f"e2e-director-{secrets.token_hex(4)}"
    pin = secrets.token_hex(4)
    load_into_softhsm(test_pki, "director", module_path=softhsm_module, token_label=label,
                      so_pin=secrets.token_hex(4), user_pin=pin)
    loaded = getattr(pkcs11, "_loaded", {}).get(softhsm_module)
    if loaded is not None:
        loaded.reinitialize()
    chain = tuple(str(p) for p in test_pki.identity("director").chain_paths)
    signer = Pkcs11Signer(Pkcs11Config(module_path=softhsm_module, token_label=label,
                                       token_serial=None, key_label="director", pin_env=None,
                                       chain_paths=chain), pin=pin)
    try:
        yield signer
    finally:
        signer.close()
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)


# -- §2.1 insurer data ------------------------------------------------------------------------


def test_director_sees_the_insurer_data(stack: Stack) -> None:
    client, plugin = stack.client("director")
    insurer = Api(client).GetInsurer(voen=DEMO_VOEN)
    assert insurer.fullName == "Xəzər Tikinti MMC"
    assert insurer.voen == DEMO_VOEN
    assert insurer.insurerType == "LEGAL_ENTITY"
    assert insurer.registrationNumber
    assert insurer.responsiblePerson.surname
    assert insurer.localOffice.code and insurer.localOffice.name
    assert plugin.last_response is not None  # the answer was signed by the gateway


# -- §2.2 the manual's story ------------------------------------------------------------------


@pytest.mark.parametrize("director_key", [
    "key file",
    pytest.param("SoftHSM2 card", marks=pytest.mark.softhsm),
])
def test_director_grants_a_dated_authority_and_the_deputy_registers_an_employee(
    stack: Stack, director_key: str, request: pytest.FixtureRequest,
) -> None:
    signer: Signer | None = (
        request.getfixturevalue("director_card") if director_key == "SoftHSM2 card" else None
    )
    client, plugin = stack.client("director", signer=signer)
    director = Api(client)
    assert director.GetInsurer(voen=DEMO_VOEN).fullName == "Xəzər Tikinti MMC"
    if signer is not None:  # the request really was signed on the token
        assert plugin.last_response is not None
        assert signer.certificate == stack.pki.identity("director").certificate

    deputy_card = card(stack, "deputy")
    start, end = today(), today() + timedelta(days=30)
    granted = grant(director, DEPUTY_FIN, deputy_card, valid_from=start, valid_to=end)
    assert (granted.fin, granted.cardNumber, granted.state) == (DEPUTY_FIN, deputy_card, "ACTIVE")
    # The name comes from the population registry, not from the request.
    assert (granted.surname, granted.name, granted.patronymic) == (
        "Hüseynova", "Gülnarə", "Şahin qızı")
    assert (granted.validFrom, granted.validTo) == (start, end)
    assert granted.grantedByFin == DIRECTOR_FIN
    assert granted.eServiceCode == REGISTRATION_ESERVICE and granted.eServiceName

    deputy = api(stack, "deputy")
    result = register(deputy)
    assert result.status == "REGISTERED"
    assert result.ssn

    # The registry shows the application; the deputy's signature is on it.
    found = director.SearchApplications(voen=DEMO_VOEN, fin=NEW_HIRE_FIN)
    assert found.total == 1 and found.application[0].ssn == result.ssn
    detail = director.GetApplication(
        voen=DEMO_VOEN, applicationId=result.applicationId)
    assert detail.application.signedBy.fin == DEPUTY_FIN
    assert detail.application.signedBy.credential.upper() == deputy_card.upper()


def test_revoked_authority_is_refused_and_audited(stack: Stack) -> None:
    director = api(stack, "director")
    deputy = api(stack, "deputy")
    granted = grant(director, DEPUTY_FIN, card(stack, "deputy"))  # indefinite
    assert granted.validFrom is None and granted.validTo is None
    assert deputy.FindPerson(
        voen=DEMO_VOEN, documentType="ID_CARD", fin=NEW_HIRE_FIN).outcome == "FOUND"

    revoked = director.RevokeAuthority(
        voen=DEMO_VOEN, authorityId=granted.authorityId, reason="Müavin məzuniyyətdən qayıdıb")
    assert revoked.state == "REVOKED"
    assert revoked.revokedByFin == DIRECTOR_FIN and revoked.revokedAt is not None

    assert refused(register, client=deputy) == "Client.NotAuthorized.AuthorityRevoked"
    assert refused(deputy.FindPerson, voen=DEMO_VOEN, documentType="ID_CARD",
                   fin=NEW_HIRE_FIN) == "Client.NotAuthorized.AuthorityRevoked"
    assert refused(director.RevokeAuthority, voen=DEMO_VOEN,
                   authorityId=granted.authorityId) == "Client.Conflict.AlreadyRevoked"

    rows = registry(director).authority
    assert [(r.authorityId, r.state) for r in rows] == [(granted.authorityId, "REVOKED")]

    # Who granted and who revoked, when and why, is kept apart from the row itself.
    with stack.gateway.database.unit_of_work() as uow:
        trail = uow.authorities.audit_trail(granted.authorityId)
    # The deputy's first signature bound the card to their certificate (a CHANGE by the
    # gateway: when, and until when the certificate is valid).
    assert [(e.event, e.actor_fin) for e in trail] == [
        (AuthorityEvent.GRANT, DIRECTOR_FIN), (AuthorityEvent.CHANGE, None),
        (AuthorityEvent.REVOKE, DIRECTOR_FIN)]
    assert set(trail[1].detail or {}) == {"bound_at", "holder_not_after"}
    assert trail[2].detail == {"reason": "Müavin məzuniyyətdən qayıdıb"}
    assert applications_total(director) == 0  # the refused registration wrote nothing


def test_authority_that_starts_tomorrow_is_not_valid_yet(stack: Stack) -> None:
    director = api(stack, "director")
    tomorrow = today() + timedelta(days=1)
    granted = grant(director, EMPLOYEE_FIN, card(stack, "employee"), valid_from=tomorrow)
    assert granted.state == "FUTURE"
    assert (granted.validFrom, granted.validTo) == (tomorrow, None)

    employee = api(stack, "employee")
    assert refused(register, client=employee) == "Client.NotAuthorized.AuthorityNotYetValid"
    assert applications_total(director) == 0


# -- expiry: a second gateway on the same database, its clock days ahead -----------------------


class ShiftedGateway:
    """The same database served by a gateway whose clock runs ``days`` ahead; requests are
    signed with timestamps from that clock (the signing plugin always uses the real time)."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.url = ""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(days=self.days)

    def call(self, signer: Signer, operation: str, payload: str) -> etree._Element:
        envelope = request_envelope(operation, payload, message_id=str(uuid.uuid4()))
        return _post(self.url, sign_envelope(envelope, signer, now=self.now()))


def _post(url: str, envelope: etree._Element) -> etree._Element:
    answer = requests.post(url, data=serialize(envelope), timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    return etree.fromstring(answer.content)


def _fault(root: etree._Element) -> str | None:
    code = root.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultcode")
    return code.split(":", 1)[1] if code and ":" in code else code


@pytest.fixture
def three_days_later(stack: Stack, database_url: str, tmp_path: Path) -> Iterator[ShiftedGateway]:
    # Three days, not more: the test PKI's CRL is valid for 30 days, and a gateway further ahead
    # would rightly refuse every signature as of unknown revocation status.
    later = ShiftedGateway(days=3)
    with sibling_stack(stack, tmp_path / "later", build={"clock": later.now}) as shifted:
        later.url = shifted.url
        yield later


def test_authority_ends_with_its_period(stack: Stack,
                                       three_days_later: ShiftedGateway) -> None:
    director = api(stack, "director")
    end = today() + timedelta(days=1)
    granted = grant(director, DEPUTY_FIN, card(stack, "deputy"), valid_to=end)
    assert (granted.validFrom, granted.validTo, granted.state) == (today(), end, "ACTIVE")

    later = three_days_later
    lookup = find_person_payload(NEW_HIRE_FIN)
    # Today the deputy may act; three days later, the same card is refused.
    assert _fault(_post(stack.url, sign_envelope(
        request_envelope("FindPerson", lookup, message_id=str(uuid.uuid4())),
        stack.pki.signer("deputy")))) is None
    answer = later.call(stack.pki.signer("deputy"), "FindPerson", lookup)
    assert _fault(answer) == "Client.NotAuthorized.AuthorityExpired"

    # The later gateway itself is fine: the director is served and sees the row as EXPIRED.
    listing = later.call(stack.pki.signer("director"), "ListAuthorities",
                         f'<t:ListAuthorities xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
                         f'</t:ListAuthorities>')
    assert _fault(listing) is None
    states = listing.findall(f".//{{{TNS}}}authority/{{{TNS}}}state")
    assert [s.text for s in states] == ["EXPIRED"]


# -- refusals ---------------------------------------------------------------------------------


def test_deputy_may_read_the_registry_but_not_grant_or_revoke(stack: Stack) -> None:
    director = api(stack, "director")
    granted = grant(director, DEPUTY_FIN, card(stack, "deputy"))
    deputy = api(stack, "deputy")
    assert registry(deputy).total == 1
    assert refused(grant, client=deputy, fin=EMPLOYEE_FIN,
                   card_number=card(stack, "employee")) == "Client.NotAuthorized.NotSealHolder"
    assert refused(deputy.RevokeAuthority, voen=DEMO_VOEN,
                   authorityId=granted.authorityId) == "Client.NotAuthorized.NotSealHolder"
    assert [r.state for r in registry(director).authority] == ["ACTIVE"]


def _requires_voen() -> list[str]:
    """Operations whose request carries a mandatory voen, read from the contract itself."""
    schema = etree.parse(str(XSD))
    names = []
    for operation in OPERATIONS:
        element = schema.find(f"{{{XS}}}element[@name='{operation}']")
        assert element is not None, operation
        type_name = element.get("type", "").split(":")[-1]
        ctype = schema.find(f"{{{XS}}}complexType[@name='{type_name}']")
        assert ctype is not None, type_name
        voen = ctype.find(f"{{{XS}}}sequence/{{{XS}}}element[@name='voen']")
        if voen is not None and voen.get("minOccurs", "1") != "0":
            names.append(operation)
    return names


def _golden_payload(operation: str, voen: str) -> str:
    """The contract's valid example of ``operation``, acting for ``voen``."""
    envelope = etree.parse(str(GOLDEN_VALID / f"{operation}.xml")).getroot()
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None
    payload = next(c for c in body if isinstance(c.tag, str))
    payload.find(f"{{{TNS}}}voen").text = voen
    return etree.tostring(payload, encoding="unicode")


def test_card_without_authority_is_refused_everywhere_and_nothing_is_written(
    stack: Stack,
) -> None:
    director = api(stack, "director")
    before_apps = applications_total(director)
    before_rows = registry(director).total
    # Every operation that acts for an insurer on the strength of the request's signature. The
    # Asan İmza operations are not signed by the caller (StartMobileLogin's voen is optional
    # anyway): there, whoever confirms on the phone is authorized when the phone has signed.
    unsigned = set(stack.gateway.settings.unsigned_operations)
    operations = [op for op in _requires_voen() if op not in unsigned]
    assert {"GetInsurer", "GrantAuthority", "ListAuthorities", "RevokeAuthority", "FindPerson",
            "SaveDraft", "SubmitRegistration", "SearchApplications",
            "SubmitRegistrationBatch"} <= set(operations)

    employee = stack.pki.signer("employee")
    codes = {}
    for operation in operations:
        envelope = request_envelope(operation, _golden_payload(operation, DEMO_VOEN),
                                    message_id=str(uuid.uuid4()))
        response = stack.post(sign_envelope(envelope, employee))
        assert response.status_code == 500, operation
        codes[operation] = response_fault_code(response)

    seal_only = {"GrantAuthority", "RevokeAuthority"}
    expected = {
        op: ("Client.NotAuthorized.NotSealHolder" if op in seal_only
             else "Client.NotAuthorized.NoAuthority")
        for op in operations
    }
    assert codes == expected
    assert applications_total(director) == before_apps
    assert registry(director).total == before_rows == 0


def test_director_of_another_insurer_is_refused(stack: Stack) -> None:
    director = api(stack, "director")
    granted = grant(director, DEPUTY_FIN, card(stack, "deputy"))
    other = api(stack, "director_b", voen=OTHER_VOEN)
    calls: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "GetInsurer": (other.GetInsurer, {"voen": DEMO_VOEN}),
        "ListAuthorities": (other.ListAuthorities, {"voen": DEMO_VOEN}),
        "GrantAuthority": (grant, {"client": other, "fin": EMPLOYEE_FIN,
                                   "card_number": card(stack, "employee")}),
        "RevokeAuthority": (other.RevokeAuthority,
                            {"voen": DEMO_VOEN, "authorityId": granted.authorityId}),
        "SubmitRegistration": (register, {"client": other}),
        "SearchApplications": (other.SearchApplications, {"voen": DEMO_VOEN}),
    }
    codes = {name: refused(call, **kwargs) for name, (call, kwargs) in calls.items()}
    assert codes == dict.fromkeys(calls, "Client.NotAuthorized.OtherInsurer")
    # Its own insurer answers it; our authority is not even visible there.
    assert other.GetInsurer(voen=OTHER_VOEN).voen == OTHER_VOEN
    assert refused(other.RevokeAuthority, voen=OTHER_VOEN,
                   authorityId=granted.authorityId) == "Client.NotFound.Authority"
    assert [r.state for r in registry(director).authority] == ["ACTIVE"]


def test_authority_bound_to_another_card_is_refused(stack: Stack) -> None:
    director = api(stack, "director")
    grant(director, DEPUTY_FIN, "0BADC0DE0BADC0DE")  # the deputy's FIN, not the deputy's card
    deputy = api(stack, "deputy")
    assert refused(register, client=deputy) == "Client.NotAuthorized.WrongCredential"
    assert applications_total(director) == 0


def test_grant_must_be_confirmed_as_trusted(stack: Stack) -> None:
    director = api(stack, "director")
    assert refused(grant, client=director, fin=DEPUTY_FIN, card_number=card(stack, "deputy"),
                   trusted=False) == "Client.Validation.Trusted"
    assert registry(director).total == 0


def test_grant_checks_what_it_is_given(stack: Stack) -> None:
    director = api(stack, "director")
    deputy_card = card(stack, "deputy")
    past, soon = today() - timedelta(days=1), today() + timedelta(days=5)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "unknown e-service": (
            {"eServiceCode": "NO_SUCH_SERVICE"}, "Client.NotFound.EService"),
        "card without number": ({"card_number": None}, "Client.Validation.CardNumber"),
        "card with a phone": (
            {"asanPhone": "+994501234567"}, "Client.Validation.Credential"),
        "ended period": ({"valid_to": past}, "Client.Validation.Period"),
        "reversed period": (
            {"valid_from": soon, "valid_to": today()}, "Client.Validation.Period"),
        "unknown person": ({"fin": "0NF7ND0"}, "Client.Person.NotFound"),
        "asan without user id": (
            {"authorityType": "ASAN_IMZA", "card_number": None, "asanPhone": "+994501234567"},
            "Client.Validation.AsanUserId"),
        "asan on a landline": (
            {"authorityType": "ASAN_IMZA", "card_number": None, "asanPhone": "+994124987654",
             "asanUserId": "123456"}, "Client.Validation.Phone"),
    }
    codes = {}
    for name, (changes, _) in cases.items():
        values: dict[str, Any] = {"fin": DEPUTY_FIN, "card_number": deputy_card}
        values.update(changes)
        codes[name] = refused(grant, client=director, **values)
    assert codes == {name: code for name, (_, code) in cases.items()}
    assert registry(director).total == 0

    first = grant(director, DEPUTY_FIN, deputy_card)
    assert refused(grant, client=director, fin=DEPUTY_FIN, card_number=deputy_card.lower(),
                   valid_from=soon) == "Client.Conflict.DuplicateAuthority"
    assert refused(director.RevokeAuthority, voen=DEMO_VOEN,
                   authorityId="no-such-authority") == "Client.NotFound.Authority"
    assert [r.authorityId for r in registry(director).authority] == [first.authorityId]


def test_registry_of_authorities(stack: Stack) -> None:
    director = api(stack, "director")
    start, end = today(), today() + timedelta(days=30)
    tomorrow = today() + timedelta(days=1)
    dated = grant(director, DEPUTY_FIN, card(stack, "deputy"), valid_from=start, valid_to=end)
    future = grant(director, EMPLOYEE_FIN, card(stack, "employee"), valid_from=tomorrow)
    asan = grant(director, "8LV4N2X", None, authorityType="ASAN_IMZA",
                 asanPhone="+994501234567", asanUserId="123456")
    gone = grant(director, EMPLOYEE_FIN, "0BADC0DE0BADC0DE")
    director.RevokeAuthority(voen=DEMO_VOEN, authorityId=gone.authorityId)

    listing = registry(director)
    assert (listing.total, listing.page, listing.pageSize) == (4, 1, 50)
    rows = {r.authorityId: r for r in listing.authority}
    assert {i: r.state for i, r in rows.items()} == {
        dated.authorityId: "ACTIVE", future.authorityId: "FUTURE",
        asan.authorityId: "ACTIVE", gone.authorityId: "REVOKED"}
    row = rows[dated.authorityId]
    assert (row.cardNumber, row.asanPhone, row.fin, row.surname, row.name) == (
        card(stack, "deputy"), None, DEPUTY_FIN, "Hüseynova", "Gülnarə")
    assert (row.validFrom, row.validTo) == (start, end)
    assert (row.eServiceCode, row.authorityType) == (REGISTRATION_ESERVICE, "E_SIGNATURE_CARD")
    assert row.eServiceName == next(
        e.name for e in director.ListEServices() if e.code == REGISTRATION_ESERVICE)
    assert (rows[asan.authorityId].asanPhone, rows[asan.authorityId].cardNumber,
            rows[asan.authorityId].surname) == ("+994501234567", None, "Bağırov")
    assert rows[gone.authorityId].revokedByFin == DIRECTOR_FIN

    # Newest first, filtered by state, paged.
    assert [r.authorityId for r in listing.authority] == [
        gone.authorityId, asan.authorityId, future.authorityId, dated.authorityId]
    active = registry(director, state="ACTIVE")
    assert active.total == 2
    assert {r.authorityId for r in active.authority} == {dated.authorityId, asan.authorityId}
    assert [r.authorityId for r in registry(director, state="FUTURE").authority] == [
        future.authorityId]
    second = registry(director, paging={"page": 2, "pageSize": 1})
    assert (second.total, [r.authorityId for r in second.authority]) == (4, [asan.authorityId])
