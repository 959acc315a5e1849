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
from signing.identity import CertificateIdentity, IdentityMapping, extract_identity

READ_ONLY_OPERATIONS = frozenset({
    "GetInsurer", "ListEServices", "ListAuthorities", "FindPerson", "GetInsuredPerson",
    "SearchApplications", "GetApplication", "GetNotification", "GetMobileSigningStatus",
    "listMethods",
})

_USER_ID = re.compile(r"^AZ([A-HJ-NP-Z0-9]{5,7})$")


class ActorFactory:
    def __init__(
        self,
        mapping: IdentityMapping,
        trusted_systems: Iterable[str] = (),
    ) -> None:
        self.mapping = mapping
        self.trusted_systems = frozenset(trusted_systems)

    def from_certificate(
        self,
        certificate: Certificate,
        *,
        operation: str,
        user_id: str | None,
        kind: CredentialKind = CredentialKind.CARD,
    ) -> Actor:
        identity = extract_identity(certificate, self.mapping)
        if identity.fin:
            return self._person(identity, certificate, kind)
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
