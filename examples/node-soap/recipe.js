// Calling the gateway with stock node-soap (WSSecurityCert) and verifying the signed answers
// with xml-crypto.
//
//   npm install
//   node recipe.js --wsdl http://127.0.0.1:8080/soap?wsdl \
//       --key var/pki/identities/director/key.pem --cert var/pki/identities/director/cert.pem
//
// Sends a signed FindPerson and a signed SubmitRegistration, prints one JSON line per call.
// Settings (docs/integration.md, "node-soap"): none on the signing side. WSSecurityCert's
// defaults are accepted as they are: RSA-SHA256 + SHA-256, the enveloped-signature transform
// on each (detached) reference, a 10-minute Timestamp (renewed on every call), plain `Id`
// attributes, the key referenced as a BinarySecurityToken. Its key must be RSA. The X-Road
// headers go unsigned through addSoapHeader (the gateway does not require them signed).
//
// node-soap does not verify answers: this script does it with xml-crypto against the gateway's
// certificate (?certs; pin it, or check its chain against your trust list), checks that the
// Body is one of the signed references, and reads the answer only from what was signed
// (getSignedReferences). The gateway answers with an RSA key: xml-crypto has no ECDSA.
'use strict';

const crypto = require('crypto');
const soap = require('soap');
const { SignedXml } = require('xml-crypto');
const { DOMParser } = require('@xmldom/xmldom');

const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const XRD = 'http://x-road.eu/xsd/xroad.xsd';
const ID = 'http://x-road.eu/xsd/identifiers';

function args() {
  const out = { voen: '1403567891', findFin: '5GH3J7K', registerFin: '7MX2C9R' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[key] = argv[i + 1];
  }
  for (const required of ['wsdl', 'key', 'cert']) {
    if (!out[required]) throw new Error(`--${required} is required`);
  }
  return out;
}

function xroadHeaders(voen, operation) {
  return [
    `<xrd:client xmlns:xrd="${XRD}" xmlns:id="${ID}" id:objectType="SUBSYSTEM">` +
      `<id:xRoadInstance>AZ</id:xRoadInstance><id:memberClass>COM</id:memberClass>` +
      `<id:memberCode>${voen}</id:memberCode><id:subsystemCode>erp</id:subsystemCode></xrd:client>`,
    `<xrd:service xmlns:xrd="${XRD}" xmlns:id="${ID}" id:objectType="SERVICE">` +
      `<id:xRoadInstance>AZ</id:xRoadInstance><id:memberClass>GOV</id:memberClass>` +
      `<id:memberCode>1500000011</id:memberCode><id:subsystemCode>insured-registration</id:subsystemCode>` +
      `<id:serviceCode>${operation}</id:serviceCode></xrd:service>`,
    `<xrd:id xmlns:xrd="${XRD}">${crypto.randomUUID()}</xrd:id>`,
    `<xrd:protocolVersion xmlns:xrd="${XRD}">4.0</xrd:protocolVersion>`,
  ];
}

// Verify an answer: the one signature, by the gateway's certificate, covering the one Body.
// Returns the signed Body as canonical XML, or throws.
function verifiedBody(xml, gatewayPem) {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signatures = doc.getElementsByTagNameNS(DS, 'Signature');
  const bodies = doc.getElementsByTagNameNS(SOAP_ENV, 'Body');
  if (signatures.length !== 1 || bodies.length !== 1) {
    throw new Error('an answer has exactly one Signature and one Body');
  }
  const verifier = new SignedXml({ publicCert: gatewayPem });
  verifier.loadSignature(signatures[0]);
  if (!verifier.checkSignature(xml)) throw new Error('the answer signature does not verify');
  const bodyId = bodies[0].getAttributeNS(WSU, 'Id');
  if (!bodyId || !verifier.getReferences().some((ref) => ref.uri === `#${bodyId}`)) {
    throw new Error('the answer Body is not signed');
  }
  const signedBody = verifier.getSignedReferences().find((ref) => /^<[^>]*:Body[ >]/.test(ref));
  if (!signedBody) throw new Error('the signed references hold no Body');
  return signedBody;
}

async function call(client, gatewayPem, operation, voen, values) {
  client.clearSoapHeaders();
  for (const header of xroadHeaders(voen, operation)) client.addSoapHeader(header);
  let raw;
  try {
    const [, rawResponse] = await client[`${operation}Async`]({ voen, ...values });
    raw = rawResponse;
  } catch (err) {
    raw = err && err.body; // a SOAP fault: node-soap rejects, the signed answer is in err.body
    if (!raw) throw err;
  }
  let body;
  try {
    body = verifiedBody(raw, gatewayPem);
  } catch (err) {
    return { operation, verified: false, reason: String(err.message || err) };
  }
  const fault = /<faultcode>([^<]*)<\/faultcode>/.exec(body);
  return fault
    ? { operation, verified: true, fault: fault[1].replace(/^[^:]*:/, '') }
    : { operation, verified: true, answer: body };
}

async function main() {
  const a = args();
  const fs = require('fs');
  const base = a.wsdl.split('?')[0];
  let gatewayPem = a.gatewayCert ? fs.readFileSync(a.gatewayCert, 'utf8') : null;
  if (!gatewayPem) {
    const chain = await (await fetch(`${base}?certs`)).text();
    gatewayPem = chain.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n';
  }
  const client = await soap.createClientAsync(a.wsdl);
  client.setSecurity(new soap.WSSecurityCert(fs.readFileSync(a.key), fs.readFileSync(a.cert), ''));
  const results = [
    await call(client, gatewayPem, 'FindPerson', a.voen, { documentType: 'ID_CARD', fin: a.findFin }),
    await call(client, gatewayPem, 'SubmitRegistration', a.voen, {
      documentType: 'ID_CARD', fin: a.registerFin, actualAddressDiffers: false,
    }),
  ];
  for (const result of results) console.log(JSON.stringify(result));
  process.exitCode = results.every((r) => r.verified && !r.fault) ? 0 : 1;
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exitCode = 2;
});
