// Calling the gateway with Apache WSS4J 1.6 + Santuario (Debian: libwss4j-java,
// libxml-security-java) on plain DOM and java.net.http, and verifying the signed answers.
//
//   CP=/usr/share/java/wss4j.jar:/usr/share/java/xmlsec.jar:/usr/share/java/commons-logging.jar:/usr/share/java/slf4j-api.jar
//   javac -cp "$CP" -d build Recipe.java
//   java -cp "build:$CP" Recipe --url http://127.0.0.1:8080/soap \
//       --keystore var/pki/identities/director/bundle.p12 --password test \
//       --trust var/pki/ca/root-ca.pem --trust var/pki/ca/issuing-ca.pem --out answers
//
// Sends a signed FindPerson and a signed SubmitRegistration, verifies each signed answer, stores
// it as OUT/<operation>-answer.xml and prints one line per call. Settings (docs/integration.md,
// "WSS4J"):
//   - WSSecSignature.setKeyIdentifierType(BST_DIRECT_REFERENCE): WSS4J 1.6's default,
//     IssuerSerial, sends no certificate, and the gateway needs the signer's certificate in
//     the message (it keeps no directory of cardholder certificates);
//   - setSignatureAlgorithm(RSA-SHA256) and setDigestAlgo(SHA-256): the defaults are SHA-1;
//   - the parts: the Timestamp (WSSecTimestamp, here 300 s) and the Body;
//   - verifying: a truststore with the root *and* the issuing CA (WSS4J 1.6 builds the path
//     from its stores, not from the other tokens in the answer); the answer key's certificate
//     pinned to the one at ?certs; the Body checked to be among the signed elements.
import java.io.ByteArrayInputStream;
import java.io.FileInputStream;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSDataRef;
import org.apache.ws.security.WSEncryptionPart;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.WSSecurityEngine;
import org.apache.ws.security.WSSecurityEngineResult;
import org.apache.ws.security.WSSecurityException;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.apache.ws.security.message.WSSecTimestamp;
import org.apache.ws.security.util.WSSecurityUtil;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

public class Recipe {
    static final String SOAP = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String XRD = "http://x-road.eu/xsd/xroad.xsd";
    static final String ID = "http://x-road.eu/xsd/identifiers";
    static final String TNS = "urn:az:dsmf:insured-registration:v1";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";

    String url;
    String keystore;
    String password = "test";
    List<String> trust = new ArrayList<>();
    String voen = "1403567891";
    String findFin = "5GH3J7K";
    String registerFin = "2RT5Y8U";
    Path out = Path.of(".");
    Merlin signing;
    Merlin verifying;
    String alias;
    X509Certificate gatewayCertificate;
    HttpClient http = HttpClient.newHttpClient();

    public static void main(String[] args) throws Exception {
        Recipe recipe = new Recipe();
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--url" -> recipe.url = args[i + 1];
                case "--keystore" -> recipe.keystore = args[i + 1];
                case "--password" -> recipe.password = args[i + 1];
                case "--trust" -> recipe.trust.add(args[i + 1]);
                case "--voen" -> recipe.voen = args[i + 1];
                case "--find-fin" -> recipe.findFin = args[i + 1];
                case "--register-fin" -> recipe.registerFin = args[i + 1];
                case "--out" -> recipe.out = Path.of(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        System.exit(recipe.run() ? 0 : 1);
    }

    boolean run() throws Exception {
        WSSConfig.init();
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(keystore)) {
            keys.load(in, password.toCharArray());
        }
        alias = keys.aliases().nextElement();
        signing = new Merlin();
        signing.setKeyStore(keys);
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");
        for (String path : trust) {
            try (FileInputStream in = new FileInputStream(path)) {
                trusted.setCertificateEntry(path, x509.generateCertificate(in));
            }
        }
        verifying = new Merlin();
        verifying.setTrustStore(trusted);
        // The answer key's certificate: the first of ?certs; answers must be signed by it.
        byte[] chain = http.send(HttpRequest.newBuilder(URI.create(url + "?certs")).build(),
                HttpResponse.BodyHandlers.ofByteArray()).body();
        gatewayCertificate = (X509Certificate) x509.generateCertificate(new ByteArrayInputStream(chain));
        Files.createDirectories(out);

        boolean find = call("FindPerson", List.of(
                new String[] {"documentType", "ID_CARD"}, new String[] {"fin", findFin}));
        boolean submit = call("SubmitRegistration", List.of(
                new String[] {"documentType", "ID_CARD"}, new String[] {"fin", registerFin},
                new String[] {"actualAddressDiffers", "false"}));
        return find && submit;
    }

    boolean call(String operation, List<String[]> fields) throws Exception {
        Document request = envelope(operation, fields);
        WSSecHeader header = new WSSecHeader();
        header.insertSecurityHeader(request);
        WSSecTimestamp timestamp = new WSSecTimestamp();
        timestamp.setTimeToLive(300);
        timestamp.build(request, header);
        WSSecSignature signature = new WSSecSignature();
        signature.setUserInfo(alias, password);
        signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
        signature.setSignatureAlgorithm(RSA_SHA256);
        signature.setDigestAlgo(SHA256);
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart("Timestamp", WSConstants.WSU_NS, ""));
        parts.add(new WSEncryptionPart("Body", SOAP, ""));
        signature.setParts(parts);
        signature.build(request, signing, header);

        HttpResponse<byte[]> response = http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .header("Content-Type", "text/xml; charset=utf-8")
                        .header("SOAPAction", "\"\"")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(serialize(request)))
                        .build(),
                HttpResponse.BodyHandlers.ofByteArray());
        Files.write(out.resolve(operation + "-answer.xml"), response.body());
        Document answer = parse(response.body());
        String problem = verify(answer);
        if (problem != null) {
            System.out.println(operation + ": HTTP " + response.statusCode() + ", answer NOT verified: " + problem);
            return false;
        }
        Element fault = (Element) answer.getElementsByTagNameNS(SOAP, "Fault").item(0);
        String outcome = fault == null ? "ok"
                : "fault " + fault.getElementsByTagName("faultcode").item(0).getTextContent();
        System.out.println(operation + ": HTTP " + response.statusCode() + ", answer signature verified, " + outcome);
        return fault == null;
    }

    /** Null when the answer is signed by the gateway's certificate over its Body; else why not. */
    String verify(Document answer) {
        try {
            List<WSSecurityEngineResult> results =
                    new WSSecurityEngine().processSecurityHeader(answer, null, null, verifying);
            WSSecurityEngineResult signed = WSSecurityUtil.fetchActionResult(results, WSConstants.SIGN);
            if (signed == null) {
                return "no signature";
            }
            X509Certificate signer = (X509Certificate) signed.get(WSSecurityEngineResult.TAG_X509_CERTIFICATE);
            if (!gatewayCertificate.equals(signer)) {
                return "signed by " + signer.getSubjectX500Principal() + ", not the gateway";
            }
            Element body = (Element) answer.getElementsByTagNameNS(SOAP, "Body").item(0);
            @SuppressWarnings("unchecked")
            List<WSDataRef> refs = (List<WSDataRef>) signed.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
            boolean bodySigned = answer.getElementsByTagNameNS(SOAP, "Body").getLength() == 1
                    && refs.stream().anyMatch(r -> r.getProtectedElement() == body);
            return bodySigned ? null : "the Body is not signed";
        } catch (WSSecurityException e) {
            return e.getMessage();
        }
    }

    Document envelope(String operation, List<String[]> fields) throws Exception {
        Document doc = DocumentBuilderFactory.newDefaultNSInstance().newDocumentBuilder().newDocument();
        Element envelope = doc.createElementNS(SOAP, "soapenv:Envelope");
        doc.appendChild(envelope);
        // Declared as attributes: Santuario canonicalizes the DOM's xmlns attributes, not the
        // namespaces a serializer would add later (else the Body's digest would not match).
        String xmlns = "http://www.w3.org/2000/xmlns/";
        envelope.setAttributeNS(xmlns, "xmlns:soapenv", SOAP);
        envelope.setAttributeNS(xmlns, "xmlns:xrd", XRD);
        envelope.setAttributeNS(xmlns, "xmlns:id", ID);
        envelope.setAttributeNS(xmlns, "xmlns:tns", TNS);
        Element header = child(envelope, SOAP, "soapenv:Header", null);
        Element client = child(header, XRD, "xrd:client", null);
        client.setAttributeNS(ID, "id:objectType", "SUBSYSTEM");
        child(client, ID, "id:xRoadInstance", "AZ");
        child(client, ID, "id:memberClass", "COM");
        child(client, ID, "id:memberCode", voen);
        child(client, ID, "id:subsystemCode", "erp");
        Element service = child(header, XRD, "xrd:service", null);
        service.setAttributeNS(ID, "id:objectType", "SERVICE");
        child(service, ID, "id:xRoadInstance", "AZ");
        child(service, ID, "id:memberClass", "GOV");
        child(service, ID, "id:memberCode", "1500000011");
        child(service, ID, "id:subsystemCode", "insured-registration");
        child(service, ID, "id:serviceCode", operation);
        child(header, XRD, "xrd:id", UUID.randomUUID().toString());
        child(header, XRD, "xrd:protocolVersion", "4.0");
        Element body = child(envelope, SOAP, "soapenv:Body", null);
        Element payload = child(body, TNS, "tns:" + operation, null);
        child(payload, TNS, "tns:voen", voen);
        for (String[] field : fields) {
            child(payload, TNS, "tns:" + field[0], field[1]);
        }
        return doc;
    }

    static Element child(Element parent, String ns, String name, String text) {
        Element element = parent.getOwnerDocument().createElementNS(ns, name);
        if (text != null) {
            element.setTextContent(text);
        }
        parent.appendChild(element);
        return element;
    }

    static byte[] serialize(Document doc) throws Exception {
        StringWriter writer = new StringWriter();
        TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(writer));
        return writer.toString().getBytes(StandardCharsets.UTF_8);
    }

    static Document parse(byte[] data) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newDefaultNSInstance();
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return factory.newDocumentBuilder().parse(new ByteArrayInputStream(data));
    }
}
