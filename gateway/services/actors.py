"""Who is acting: the verified signer's certificate turned into an ``Actor``.

A person's certificate (e-imza card or Asan İmza) acts for itself. A system certificate (e.g. the
e-gov portal) may act for the person named in the X-Road ``userId`` header, but only when that
system is configured as trusted, and only for read-only operations: the portal has authenticated
the person, but a state change must carry the person's own signature.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cryptography.x509 import Certificate

from gateway.domain.errors import NotAuthorized, ValidationFailed
from gateway.domain.model import Actor, CredentialKind
from signing.identity import CertificateIdentity, IdentityMapping, IdentityMemo

READ_ONLY_OPERATIONS = frozenset({
    "GetInsurer", "ListEServices", "ListLocalOffices", "ListAuthorities", "FindPerson",
    "GetInsuredPerson", "SearchApplications", "ExportApplications", "GetApplication",
    "GetNotification", "GetMobileSigningStatus", "listMethods",
})

_USER_ID = re.compile(r"^AZ([A-HJ-NP-Z0-9]{5,7})$")


def _bind_client(client_member: str | None, allowed: set[str | None]) -> None:
    members = {m for m in allowed if m}
    if client_member is None or not members or client_member in members:
        return
    raise NotAuthorized(
        f"the X-Road client member {client_member} is neither the signer's organisation nor"
        " the insurer the request acts for",
        code="Client.NotAuthorized.XRoadClient", field="client",
    )


class ActorFactory:
    def __init__(
        self,
        mapping: IdentityMapping,
        trusted_systems: Iterable[str] = (),
        *,
        identity_memo_entries: int = 4096,
    ) -> None:
        """``identity_memo_entries``: certificates whose identity is remembered (0: none)."""
        self.mapping = mapping
        self.trusted_systems = frozenset(trusted_systems)
        self._identity = IdentityMemo(mapping, identity_memo_entries)

    def from_certificate(
        self,
        certificate: Certificate,
        *,
        operation: str,
        user_id: str | None,
        kind: CredentialKind = CredentialKind.CARD,
        client_member: str | None = None,
        acting_for: str | None = None,
    ) -> Actor:
        """``client_member``: the memberCode of the signed X-Road ``client`` header;
        ``acting_for``: the VÖEN the signed body names. A person's request comes from the
        X-Road member of the signer's organisation (the certificate's VÖEN) or of the insurer
        it acts for; a system's from its own member. Any other member is refused: the header
        names who sent the message and must not claim a third organisation."""
        identity = self._identity(certificate)
        if identity.fin:
            _bind_client(client_member, {identity.voen, acting_for})
            return self._person(identity, certificate, kind)
        _bind_client(client_member, {identity.voen})
        return self._system(identity, certificate, operation, user_id)

    def _person(
        self, identity: CertificateIdentity, certificate: Certificate, kind: CredentialKind
    ) -> Actor:
        return Actor(
            fin=identity.fin,
            voen=identity.voen,
            credential_kind=kind,
            credential=identity.card_number,
            seal_authority=identity.seal_authority,
            name=identity.common_name,
            certificate_not_after=certificate.not_valid_after_utc,
        )

    def _system(
        self,
        identity: CertificateIdentity,
        certificate: Certificate,
        operation: str,
        user_id: str | None,
    ) -> Actor:
        system_key = f"TINAZ-{identity.voen}" if identity.voen else identity.fingerprint_sha256
        if system_key not in self.trusted_systems and identity.fingerprint_sha256 not in \
                self.trusted_systems:
            raise NotAuthorized(
                "this system certificate is not configured as a trusted system",
                code="Client.NotAuthorized.UntrustedSystem",
            )
        if operation not in READ_ONLY_OPERATIONS:
            raise NotAuthorized(
                "a system certificate may only read; changes need the person's own signature",
                code="Client.NotAuthorized.SystemCannotChange",
            )
        match = _USER_ID.match(user_id or "")
        if not match:
            raise ValidationFailed(
                "a system request names the person in X-Road userId as AZ<FIN>",
                code="Client.Header.UserId", field="userId",
            )
        return Actor(
            fin=match.group(1),
            voen=None,
            credential_kind=CredentialKind.SYSTEM,
            credential=identity.fingerprint_sha256,
            seal_authority=False,
            name=identity.organization or identity.common_name,
            certificate_not_after=certificate.not_valid_after_utc,
            system_name=identity.organization or identity.common_name,
        )
