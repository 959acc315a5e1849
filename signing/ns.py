"""XML namespaces and fixed URIs of the message-security profile, in one place.

Clark-notation helpers (``SOAP_BODY`` = ``{ns}Body``) are defined next to each namespace so code
compares elements by namespace URI, never by prefix.
"""

from __future__ import annotations

from typing import Final

# --- namespaces -------------------------------------------------------------------------------

SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
DS11: Final = "http://www.w3.org/2009/xmldsig11#"
EC: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
XRD: Final = "http://x-road.eu/xsd/xroad.xsd"
ID: Final = "http://x-road.eu/xsd/identifiers"
XML: Final = "http://www.w3.org/XML/1998/namespace"

#: Prefixes we write. Readers never rely on them.
PREFIXES: Final = {
    "soapenv": SOAP11,
    "wsse": WSSE,
    "wsu": WSU,
    "ds": DS,
    "ec": EC,
    "xrd": XRD,
    "id": ID,
}


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local``."""
    return f"{{{ns}}}{local}"


# --- element and attribute names --------------------------------------------------------------

SOAP_ENVELOPE: Final = q(SOAP11, "Envelope")
SOAP_HEADER: Final = q(SOAP11, "Header")
SOAP_BODY: Final = q(SOAP11, "Body")
SOAP_MUST_UNDERSTAND: Final = q(SOAP11, "mustUnderstand")

WSSE_SECURITY: Final = q(WSSE, "Security")
WSSE_BST: Final = q(WSSE, "BinarySecurityToken")
WSSE_STR: Final = q(WSSE, "SecurityTokenReference")
WSSE_REFERENCE: Final = q(WSSE, "Reference")
WSSE_KEY_IDENTIFIER: Final = q(WSSE, "KeyIdentifier")
WSU_TIMESTAMP: Final = q(WSU, "Timestamp")
WSU_CREATED: Final = q(WSU, "Created")
WSU_EXPIRES: Final = q(WSU, "Expires")
WSU_ID: Final = q(WSU, "Id")
XML_ID: Final = q(XML, "id")

DS_SIGNATURE: Final = q(DS, "Signature")
DS_SIGNED_INFO: Final = q(DS, "SignedInfo")
DS_C14N_METHOD: Final = q(DS, "CanonicalizationMethod")
DS_SIGNATURE_METHOD: Final = q(DS, "SignatureMethod")
DS_REFERENCE: Final = q(DS, "Reference")
DS_TRANSFORMS: Final = q(DS, "Transforms")
DS_TRANSFORM: Final = q(DS, "Transform")
DS_DIGEST_METHOD: Final = q(DS, "DigestMethod")
DS_DIGEST_VALUE: Final = q(DS, "DigestValue")
DS_SIGNATURE_VALUE: Final = q(DS, "SignatureValue")
DS_KEY_INFO: Final = q(DS, "KeyInfo")
DS_X509_DATA: Final = q(DS, "X509Data")
DS_X509_CERTIFICATE: Final = q(DS, "X509Certificate")
DS_X509_ISSUER_SERIAL: Final = q(DS, "X509IssuerSerial")
DS_X509_ISSUER_NAME: Final = q(DS, "X509IssuerName")
DS_X509_SERIAL_NUMBER: Final = q(DS, "X509SerialNumber")
DS_OBJECT: Final = q(DS, "Object")
DS_MANIFEST: Final = q(DS, "Manifest")
DS_RETRIEVAL_METHOD: Final = q(DS, "RetrievalMethod")
DS_HMAC_OUTPUT_LENGTH: Final = q(DS, "HMACOutputLength")
EC_INCLUSIVE_NAMESPACES: Final = q(EC, "InclusiveNamespaces")

# --- algorithm and token URIs -----------------------------------------------------------------

EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N10: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N10_WITH_COMMENTS: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
C14N11: Final = "http://www.w3.org/2006/12/xml-c14n11"
ENVELOPED_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
DS_MANIFEST_TYPE: Final = "http://www.w3.org/2000/09/xmldsig#Manifest"

BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
X509V3: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)
#: ``wsse:KeyIdentifier`` value types: the certificate's subjectKeyIdentifier, its SHA-1.
X509_SKI: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
    "#X509SubjectKeyIdentifier"
)
THUMBPRINT_SHA1: Final = (
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
)

# --- X-Road 4.0 headers -----------------------------------------------------------------------

#: X-Road header local names, in the order the X-Road message protocol lists them.
XROAD_HEADERS: Final = (
    "client",
    "service",
    "centralService",
    "id",
    "userId",
    "requestHash",
    "issue",
    "protocolVersion",
)
