#!/usr/bin/env bash
# Calling the gateway with xmlsec1, both ways: sign each request from a template, verify each
# signed answer. Needs xmlsec1 (1.2.x, OpenSSL build), openssl, curl, GNU date/sed/base64.
#
#   examples/xmlsec1/recipe.sh URL KEY.pem CERT.pem ROOT.pem [VOEN FIND_FIN REGISTER_FIN OUT_DIR]
#   examples/xmlsec1/recipe.sh http://127.0.0.1:8080/soap var/pki/identities/director/key.pem \
#       var/pki/identities/director/cert.pem var/pki/ca/root-ca.pem
#
# Sends a signed FindPerson and a signed SubmitRegistration; stores each answer as
# OUT_DIR/<operation>-answer.xml and prints one line per call. Settings (docs/integration.md,
# "xmlsec1"):
#   - signing: a template with the whole Security header (Timestamp, BinarySecurityToken,
#     Signature with a Reference to the Timestamp and to the Body), and --id-attr:Id for each
#     signed element's local name (xmlsec1 does not know wsu:Id by itself);
#   - verifying: xmlsec1 cannot follow a wsse:SecurityTokenReference, so the gateway's certificate
#     comes from ?certs (checked with openssl verify against the root you trust), is given with
#     --pubkey-cert-pem, and --id-attr:Id names every element the gateway signs. xmlsec1 checks
#     the references it finds, not *which* elements they are: the script also checks that the
#     answer has one Body and that its id is among the references.
set -euo pipefail
url=$1 key=$2 cert=$3 root=$4
voen=${5:-1403567891} find_fin=${6:-5GH3J7K} register_fin=${7:-3HN8B5Q} out=${8:-.}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# The answer key's certificate (the first of ?certs), its chain checked against our own root.
curl -sSf "$url?certs" -o "$work/chain.pem"
openssl x509 -in "$work/chain.pem" -out "$work/gateway.pem"
openssl verify -CAfile "$root" -untrusted "$work/chain.pem" "$work/gateway.pem" >/dev/null

# Every element the gateway signs in an answer (X-Road headers, Timestamp, Body).
answer_ids=()
for local in Timestamp Body client service id userId issue protocolVersion requestHash; do
    answer_ids+=(--id-attr:Id "$local")
done
certificate=$(openssl x509 -in "$cert" -outform DER | base64 -w0)
failed=0

call() {  # OPERATION PAYLOAD
    local operation=$1 payload=$2
    local created expires message_id status body_id answer="$out/$operation-answer.xml"
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    expires=$(date -u -d '+5 minutes' +%Y-%m-%dT%H:%M:%SZ)
    message_id=$(cat /proc/sys/kernel/random/uuid)
    sed -e "s|@VOEN@|$voen|g" -e "s|@OPERATION@|$operation|g" -e "s|@MESSAGE_ID@|$message_id|g" \
        -e "s|@CREATED@|$created|g" -e "s|@EXPIRES@|$expires|g" \
        -e "s|@CERTIFICATE@|$certificate|g" -e "s|@PAYLOAD@|$payload|g" \
        "$here/request-template.xml" > "$work/request.xml"
    xmlsec1 --sign --privkey-pem "$key" --id-attr:Id Timestamp --id-attr:Id Body \
        --output "$work/signed.xml" "$work/request.xml"
    status=$(curl -sS -o "$answer" -w '%{http_code}' \
        -H 'Content-Type: text/xml; charset=utf-8' --data-binary @"$work/signed.xml" "$url")
    if ! xmlsec1 --verify --pubkey-cert-pem "$work/gateway.pem" "${answer_ids[@]}" "$answer" \
            2>"$work/verify.log"; then
        echo "$operation: HTTP $status, answer signature NOT verified"; failed=1; return
    fi
    # the Body's wsu:Id (whatever prefix the answer binds the wsu namespace to)
    body_id=$(grep -o '<[A-Za-z0-9_]*:Body [^>]*:Id="[^"]*"' "$answer" \
        | sed 's/.*:Id="\([^"]*\)"/\1/' || true)
    if [ -z "$body_id" ] || [ "$(grep -o '<[A-Za-z0-9_]*:Body[ >]' "$answer" | wc -l)" -ne 1 ] \
            || ! grep -q "URI=\"#$body_id\"" "$answer"; then
        echo "$operation: HTTP $status, the answer's Body is not what was signed"; failed=1; return
    fi
    echo "$operation: HTTP $status, answer signature verified"
}

call FindPerson "<tns:FindPerson><tns:voen>$voen</tns:voen><tns:documentType>ID_CARD</tns:documentType><tns:fin>$find_fin</tns:fin></tns:FindPerson>"
call SubmitRegistration "<tns:SubmitRegistration><tns:voen>$voen</tns:voen><tns:documentType>ID_CARD</tns:documentType><tns:fin>$register_fin</tns:fin><tns:actualAddressDiffers>false</tns:actualAddressDiffers></tns:SubmitRegistration>"
exit "$failed"
