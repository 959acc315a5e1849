"""Calling the gateway with stock zeep and its own WS-Security signature (python-xmlsec).

    python -m venv venv && venv/bin/pip install -r requirements.txt
    venv/bin/python recipe.py --wsdl http://127.0.0.1:8080/soap?wsdl \
        --key var/pki/identities/director/key.pem --cert var/pki/identities/director/cert.pem \
        --voen 1403567891 --find-fin 5GH3J7K --register-fin 6TY2U8P

Sends a signed FindPerson and a signed SubmitRegistration and verifies each signed answer
against the gateway's certificate. Nothing of zeep is patched; the settings that matter
(docs/integration.md, "zeep"):

1. ``BinarySignature(..., signature_method=RSA_SHA256, digest_method=SHA256)``: zeep's default
   is RSA-SHA1, which the gateway refuses (``Client.Signature.Algorithm``).
2. A ``wsu:Timestamp`` in the Security header *before* the signature is made: zeep signs one only
   if it is already there, and has no Timestamp object of its own (:class:`Timestamp` below, a
   public ``apply``/``verify`` plugin, composed before the signature).
3. Answers verified against the *gateway's* certificate (``?certs``) with
   ``zeep.wsse.signature.verify_envelope``: ``BinarySignature.verify`` checks against the
   client's own certificate, which an answer is never signed with.

The X-Road headers go as ordinary SOAP headers (``_soapheaders``); zeep does not sign them, and
the gateway does not require it (docs/integration.md, "Which X-Road headers must be signed").
Prints one JSON line per call.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
import xmlsec
from zeep import Client
from zeep.exceptions import Fault, SignatureVerificationFailed
from zeep.wsse.signature import BinarySignature, verify_envelope
from zeep.wsse.utils import WSU, get_security_header

GATEWAY_MEMBER = {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": "1500000011",
                  "subsystemCode": "insured-registration"}


class Timestamp:
    """Adds ``wsu:Timestamp`` (Created, Expires) to the Security header; zeep signs it then."""

    def __init__(self, lifetime: timedelta = timedelta(minutes=5)) -> None:
        self.lifetime = lifetime

    def apply(self, envelope: Any, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
        now = datetime.now(timezone.utc)  # noqa: UP017 - the recipe runs on Python < 3.11 too
        get_security_header(envelope).append(
            WSU.Timestamp(WSU.Created(_xs(now)), WSU.Expires(_xs(now + self.lifetime)))
        )
        return envelope, headers

    def verify(self, envelope: Any) -> Any:
        return envelope


class SignAndVerifyGateway:
    """Signs with zeep's BinarySignature; verifies answers with the gateway's certificate."""

    def __init__(self, key_file: str, cert_file: str, gateway_cert_file: str) -> None:
        self.timestamp = Timestamp()
        self.signature = BinarySignature(
            key_file, cert_file,
            signature_method=xmlsec.Transform.RSA_SHA256,
            digest_method=xmlsec.Transform.SHA256,
        )
        self.gateway_cert_file = gateway_cert_file

    def apply(self, envelope: Any, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
        envelope, headers = self.timestamp.apply(envelope, headers)
        return self.signature.apply(envelope, headers)

    def verify(self, envelope: Any) -> Any:
        verify_envelope(envelope, self.gateway_cert_file)
        return envelope


def _xs(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def xroad_headers(voen: str, service_code: str) -> dict[str, Any]:
    # Keyed by the WSDL's header part names (xroadClient, ...), not the element names: the
    # parts are named apart from every body element (wsimport -XadditionalHeaders needs that).
    return {
        "xroadClient": {"objectType": "SUBSYSTEM", "xRoadInstance": "AZ", "memberClass": "COM",
                        "memberCode": voen, "subsystemCode": "erp"},
        "xroadService": {"objectType": "SERVICE", **GATEWAY_MEMBER, "serviceCode": service_code},
        "xroadId": str(uuid.uuid4()),
        "xroadProtocolVersion": "4.0",
    }


def gateway_certificate(wsdl: str, given: str | None) -> str:
    """The gateway's certificate as a PEM file: the one given, or the first of ``?certs``."""
    if given:
        return given
    chain = requests.get(wsdl.split("?")[0] + "?certs", timeout=10)
    chain.raise_for_status()
    leaf = chain.text.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    handle.write(leaf)
    handle.close()
    return handle.name


def call(client: Client, operation: str, voen: str, **values: Any) -> dict[str, Any]:
    try:
        answer = getattr(client.service, operation)(
            voen=voen, _soapheaders=xroad_headers(voen, operation), **values
        )
    except Fault as fault:  # raised only after the signed fault was verified
        return {"operation": operation, "verified": True, "fault": fault.code,
                "message": fault.message}
    except SignatureVerificationFailed:
        return {"operation": operation, "verified": False}
    body = answer.body if hasattr(answer, "body") else answer  # with headers in the answer
    return {"operation": operation, "verified": True, "answer": _plain(body)}


def _plain(value: Any) -> Any:
    from zeep.helpers import serialize_object

    return json.loads(json.dumps(serialize_object(value), default=str))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--wsdl", required=True)
    p.add_argument("--key", required=True, help="PEM private key of the signer (RSA)")
    p.add_argument("--cert", required=True, help="PEM certificate of the signer")
    p.add_argument("--gateway-cert", help="PEM certificate of the gateway (default: ?certs)")
    p.add_argument("--voen", default="1403567891")
    p.add_argument("--find-fin", default="5GH3J7K")
    p.add_argument("--register-fin", default="6TY2U8P")
    args = p.parse_args(argv)

    gateway_cert = gateway_certificate(args.wsdl, args.gateway_cert)
    wsse = SignAndVerifyGateway(args.key, args.cert, gateway_cert)
    client = Client(args.wsdl, wsse=wsse)
    results = [
        call(client, "FindPerson", args.voen, documentType="ID_CARD", fin=args.find_fin),
        call(client, "SubmitRegistration", args.voen, documentType="ID_CARD",
             fin=args.register_fin, actualAddressDiffers=False),
    ]
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return 0 if all(r["verified"] and "fault" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
