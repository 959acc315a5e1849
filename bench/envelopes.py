"""Signed requests of the demo insurer's ERP for the benchmarks: one builder instead of a copy
per script.

Every request is the demo insurer's (VÖEN ``VOEN``, whose director holds its seal in the test
PKI), sent as X-Road member ``AZ/COM/<VÖEN>/erp`` with a fresh message id, and signed by
``signer`` the way the client kit signs (Timestamp, Body and the X-Road headers).
"""

from __future__ import annotations

import uuid

from lxml import etree

from gateway.client.wsse import DSMF_SERVICE, XRoadMember, add_xroad_headers
from signing.parser import serialize
from signing.signer import Signer
from signing.wsse import sign_envelope

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:az:dsmf:insured-registration:v1"
VOEN = "1403567891"  # the demo insurer; "director" of the test PKI holds its seal


def signed_request(signer: Signer, operation: str, fields: str) -> bytes:
    """``<t:{operation}>`` holding the insurer's VÖEN then ``fields`` (XML in the ``t:``
    namespace), in a signed envelope."""
    envelope = etree.fromstring(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Header/><soapenv:Body>'
        f'<t:{operation} xmlns:t="{TNS}"><t:voen>{VOEN}</t:voen>{fields}</t:{operation}>'
        f"</soapenv:Body></soapenv:Envelope>".encode()
    )
    add_xroad_headers(envelope[0], client=XRoadMember("AZ", "COM", VOEN, "erp"),
                      service=DSMF_SERVICE, operation=operation, message_id=str(uuid.uuid4()))
    return serialize(sign_envelope(envelope, signer))


def find_person_envelope(signer: Signer, fin: str = "5GH3J7K") -> bytes:
    """A signed FindPerson of an ID card's FIN (default: a demo person)."""
    return signed_request(signer, "FindPerson",
                          f"<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>")


def submit_envelope(signer: Signer, fin: str) -> bytes:
    """A signed SubmitRegistration of an ID card's FIN, registration address = actual."""
    return signed_request(
        signer, "SubmitRegistration",
        f"<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>"
        "<t:actualAddressDiffers>false</t:actualAddressDiffers>"
        "<t:contacts><t:mobilePhone>+994501234567</t:mobilePhone></t:contacts>")
