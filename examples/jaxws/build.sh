#!/usr/bin/env bash
# Generate the JAX-WS client from a running gateway's WSDL and compile the recipe.
#
#   examples/jaxws/build.sh WSDL_URL OUT_DIR    # OUT_DIR/src: generated code, OUT_DIR/classes
#   examples/jaxws/build.sh --classpath         # prints the runtime classpath (Debian jars)
#
# Needs (Debian): jaxws (wsimport) and libjaxws-java (the JAX-WS RI 2.3 runtime, javax.xml.ws;
# jaxws-rt.jar's manifest pulls in JAXB, SAAJ, StAX and the rest), libwss4j-java and
# libxml-security-java (WS-Security), a JDK (javac).
set -euo pipefail

JARS=/usr/share/java
CLASSPATH_RT="$JARS/jaxws-rt.jar:$JARS/wss4j.jar:$JARS/xmlsec.jar:$JARS/commons-logging.jar:$JARS/slf4j-api.jar"
if [ "${1:-}" = --classpath ]; then
    echo "$CLASSPATH_RT"
    exit 0
fi
if [ "$#" -ne 2 ]; then
    echo "usage: $0 WSDL_URL OUT_DIR | --classpath" >&2
    exit 2
fi
wsdl="$1"
out="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

rm -rf "$out/src" "$out/classes"
mkdir -p "$out/src" "$out/classes"
# -XadditionalHeaders: the X-Road headers (soap:header parts of another message) become
# parameters of each operation. -Xnocompile -s: keep the sources, compile them below with the
# recipe. -wsdllocation: the generated default; the recipe passes the real ?wsdl URL anyway.
wsimport -quiet -XadditionalHeaders -Xnocompile -s "$out/src" -d "$out/src" \
    -wsdllocation 'http://127.0.0.1:8080/soap?wsdl' "$wsdl"
find "$out/src" -name '*.java' >"$out/sources.txt"
javac -nowarn -encoding UTF-8 -cp "$CLASSPATH_RT" -d "$out/classes" \
    @"$out/sources.txt" "$here/WsSecurityHandler.java" "$here/Recipe.java"
