"""An ERP-style client: zeep + our signing plugin + a card (PKCS#11) or a key file.

    python -m gateway.client.example --wsdl http://127.0.0.1:8080/soap?wsdl --pki var/pki \
        --fin 5GH3J7K
    python -m gateway.client.example --wsdl ... --pki var/pki --fin 5GH3J7K \
        --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token-label card --key-label director

It signs FindPerson with the card (PIN from DSMF_PKCS11_PIN or a prompt), and verifies the
gateway's signed answer against the demo trust list before printing it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zeep
from zeep.exceptions import Fault

from gateway.client.wsse import GatewayIdentity, SigningPlugin, XRoadMember
from signing.errors import SigningError, VerificationError
from signing.signer import Signer
from signing.testpki import load_test_pki


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--wsdl", required=True)
    p.add_argument("--pki", required=True, help="demo PKI directory (trust list, demo keys)")
    p.add_argument("--identity", default="director", help="demo identity whose key file to use")
    p.add_argument("--gateway-identity", default="gateway_rsa",
                   help="demo identity whose certificate signs the gateway's answers (pinned)")
    p.add_argument("--voen", default="1403567891")
    p.add_argument("--fin", required=True)
    p.add_argument("--document-type", default="ID_CARD")
    p.add_argument("--pkcs11-module")
    p.add_argument("--token-label")
    p.add_argument("--key-label")
    args = p.parse_args(argv)

    pki = load_test_pki(Path(args.pki))
    signer: Signer
    if args.pkcs11_module:
        from signing.pkcs11 import Pkcs11Config, Pkcs11Signer

        signer = Pkcs11Signer(Pkcs11Config(
            module_path=args.pkcs11_module, token_label=args.token_label, token_serial=None,
            key_label=args.key_label,
        ))
    else:
        signer = pki.signer(args.identity)
    plugin = SigningPlugin(
        signer,
        client=XRoadMember("AZ", "COM", args.voen, "erp"),
        verify_with=pki.trust_store(),
        # Only the gateway's own certificate may sign its answers (the demo PKI holds it).
        gateway=GatewayIdentity.pinned(pki.identity(args.gateway_identity).certificate),
    )
    client = zeep.Client(args.wsdl, plugins=[plugin])
    try:
        answer = client.service.FindPerson(
            voen=args.voen, documentType=args.document_type, fin=args.fin
        )
    except Fault as fault:
        print(f"refused: {fault.code} {fault.message}", file=sys.stderr)
        return 1
    except VerificationError as exc:
        print(f"the answer's signature does not verify: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except SigningError as exc:  # the card: wrong PIN, locked PIN, missing token or key
        print(f"cannot sign with the card: {exc.code}: {exc}", file=sys.stderr)
        return 1
    signed = plugin.last_response
    if signed is not None:
        print(f"answer signed by {signed.certificate.subject.rfc4514_string()} "
              f"at {signed.signed_at:%Y-%m-%d %H:%M:%S}Z — verified")
    print(answer.body if hasattr(answer, "body") else answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
