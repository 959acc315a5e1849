// A JAX-WS SOAPHandler that signs every request with WSS4J 1.6 + Santuario and verifies every
// answer (faults included) before the runtime reads it. Used by Recipe.java; see there and
// docs/integration.md ("JAX-WS") for how to build and run it.
//
// Signing, the settings of the WSS4J recipe (examples/java/Recipe.java) plus two for JAX-WS:
//   - setKeyIdentifierType(BST_DIRECT_REFERENCE): WSS4J 1.6's default, IssuerSerial, sends no
//     certificate, and the gateway needs the signer's certificate in the message;
//   - setSignatureAlgorithm(RSA-SHA256), setDigestAlgo(SHA-256): the defaults are SHA-1;
//   - the signed parts: a Timestamp (WSSecTimestamp, 300 s; the gateway accepts up to 600 s)
//     and the Body. The X-Road headers need not be signed (docs/integration.md §6);
//   - WSSConfig.setWsiBSPCompliant(false): else WSS4J 1.6 writes an InclusiveNamespaces
//     PrefixList with "#default" (the RI declares a default namespace on the Header), which the
//     gateway refuses (Client.Signature.Transform);
//   - header blocks the RI sent as empty xsi:nil (the null userId, issue, sessionToken
//     parameters) are removed: a present userId must be signed (Client.Signature.Wrapping);
//   - WSS4J works on a plain DOM copy of the message, not on SAAJ's SOAPPart (SAAJ 1.4 wraps
//     its nodes: WRONG_DOCUMENT_ERR), and the signed copy replaces the message.
// Verifying:
//   - a truststore with the root *and* the issuing CA (WSS4J 1.6 builds the path from its
//     stores, not from the other tokens in the answer);
//   - the signer must be the certificate served at ?certs, and the Body (exactly one) must be
//     among the signed elements (WSS4J checks only the references it finds);
//   - the runtime then reads a message rebuilt from exactly the bytes that were verified.
// An answer that does not verify makes the call throw a WebServiceException: the generated
// port never returns (or throws GatewayFault for) data that was not signed by the gateway.
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.soap.MessageFactory;
import javax.xml.soap.SOAPException;
import javax.xml.soap.SOAPMessage;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import javax.xml.ws.WebServiceException;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;
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
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

public class WsSecurityHandler implements SOAPHandler<SOAPMessageContext> {
    static final String SOAP = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    static final String XSI = "http://www.w3.org/2001/XMLSchema-instance";

    private final Merlin signing;
    private final String alias;
    private final String password;
    private final Merlin verifying;
    private final X509Certificate gatewayCertificate;
    /** The last answer's check: "verified" or why it was refused (read by Recipe). */
    volatile String lastAnswer = "none";

    /**
     * WS-I BSP mode off: in it WSS4J 1.6 lists the namespaces in scope as an InclusiveNamespaces
     * PrefixList, and the JAX-WS RI declares a default namespace on the Header, so the list
     * carries "#default", which the gateway refuses (Client.Signature.Transform).
     */
    static final WSSConfig CONFIG;

    static {
        WSSConfig.init();
        CONFIG = WSSConfig.getNewInstance();
        CONFIG.setWsiBSPCompliant(false);
    }

    WsSecurityHandler(Merlin signing, String alias, String password, Merlin verifying,
                      X509Certificate gatewayCertificate) {
        this.signing = signing;
        this.alias = alias;
        this.password = password;
        this.verifying = verifying;
        this.gatewayCertificate = gatewayCertificate;
    }

    /** The headers this handler processes, so the runtime accepts them on answers. */
    @Override
    public Set<QName> getHeaders() {
        return Set.of(new QName(WSConstants.WSSE_NS, WSConstants.WSSE_LN));
    }

    @Override
    public boolean handleMessage(SOAPMessageContext context) {
        if ((Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
            sign(context);
        } else {
            verify(context);
        }
        return true;
    }

    /** Inbound SOAP faults come here: they are signed like any answer, so verify them too. */
    @Override
    public boolean handleFault(SOAPMessageContext context) {
        verify(context);
        return true;
    }

    @Override
    public void close(MessageContext context) {
    }

    /**
     * Signs the request on a plain DOM copy and replaces the message with the signed one.
     * WSS4J cannot work on the SAAJ 1.4 SOAPPart in place (SAAJ wraps its DOM nodes:
     * WRONG_DOCUMENT_ERR), hence the copy.
     */
    void sign(SOAPMessageContext context) {
        try {
            SOAPMessage message = context.getMessage();
            Document request = parse(bytes(message));
            dropNilHeaders(request);
            WSSecHeader header = new WSSecHeader();
            header.insertSecurityHeader(request);
            WSSecTimestamp timestamp = new WSSecTimestamp();
            timestamp.setTimeToLive(300);
            timestamp.build(request, header);
            WSSecSignature signature = new WSSecSignature(CONFIG);
            signature.setUserInfo(alias, password);
            signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
            signature.setSignatureAlgorithm(RSA_SHA256);
            signature.setDigestAlgo(SHA256);
            List<WSEncryptionPart> parts = new ArrayList<>();
            parts.add(new WSEncryptionPart("Timestamp", WSConstants.WSU_NS, ""));
            parts.add(new WSEncryptionPart("Body", SOAP, ""));
            signature.setParts(parts);
            signature.build(request, signing, header);
            context.setMessage(message(message, serialize(request)));
        } catch (Exception e) {
            throw new WebServiceException("cannot sign the request: " + e, e);
        }
    }

    /**
     * Verifies the answer on a plain DOM parsed from the message, then hands the runtime a
     * message built from exactly the bytes that were verified.
     */
    void verify(SOAPMessageContext context) {
        String problem;
        byte[] answer = null;
        try {
            answer = bytes(context.getMessage());
            problem = problem(parse(answer));
        } catch (Exception e) {
            problem = "unreadable answer: " + e;
        }
        lastAnswer = problem == null ? "verified" : problem;
        if (problem != null) {
            throw new WebServiceException("answer NOT verified: " + problem);
        }
        try {
            context.setMessage(message(context.getMessage(), answer));
        } catch (SOAPException | IOException e) {
            throw new WebServiceException(e);
        }
    }

    /**
     * The JAX-WS RI sends every header parameter of the generated port, a null one as an empty
     * xsi:nil="true" element. For the gateway a present xrd:userId means "acting for this
     * person" and must be signed (an empty, unsigned one is Client.Signature.Wrapping), so the
     * headers left null (userId, issue, sessionToken) are removed before signing.
     */
    static void dropNilHeaders(Document request) {
        Element header = (Element) request.getElementsByTagNameNS(SOAP, "Header").item(0);
        if (header == null) {
            return;
        }
        List<Element> nil = new ArrayList<>();
        for (Node child = header.getFirstChild(); child != null; child = child.getNextSibling()) {
            if (child instanceof Element element && "true".equals(element.getAttributeNS(XSI, "nil"))
                    && !element.hasChildNodes()) {
                nil.add(element);
            }
        }
        nil.forEach(header::removeChild);
    }

    static byte[] bytes(SOAPMessage message) throws SOAPException, IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        message.writeTo(out);
        return out.toByteArray();
    }

    static SOAPMessage message(SOAPMessage like, byte[] envelope) throws SOAPException, IOException {
        return MessageFactory.newInstance().createMessage(like.getMimeHeaders(),
                new ByteArrayInputStream(envelope));
    }

    /** A namespace-aware parse that refuses DOCTYPEs (no entity tricks in answers). */
    static Document parse(byte[] data) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newDefaultNSInstance();
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return factory.newDocumentBuilder().parse(new ByteArrayInputStream(data));
    }

    static byte[] serialize(Document doc) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(out));
        return out.toByteArray();
    }

    /** Null when the answer is signed by the gateway's certificate over its one Body. */
    String problem(Document answer) {
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
            NodeList bodies = answer.getElementsByTagNameNS(SOAP, "Body");
            Element body = (Element) bodies.item(0);
            @SuppressWarnings("unchecked")
            List<WSDataRef> refs = (List<WSDataRef>) signed.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
            boolean bodySigned = bodies.getLength() == 1
                    && refs.stream().anyMatch(r -> r.getProtectedElement() == body);
            return bodySigned ? null : "the Body is not signed";
        } catch (WSSecurityException e) {
            return e.getMessage();
        }
    }
}
