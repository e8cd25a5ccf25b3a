#!/usr/bin/env bash
# Prints the home of a JDK 25 or newer, or explains on stderr what is missing and exits 1.
# Order: $JAVA_HOME if it is 25+, then the Temurin 25 path of our build machines, then any
# /usr/lib/jvm/*25* and finally the java on PATH.
version_of() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
ok() { [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] && v=$(version_of "$1") && [ "${v%%.*}" -ge 25 ] 2>/dev/null; }
for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*25* \
         "$(dirname "$(dirname "$(readlink -f "$(command -v javac 2>/dev/null || echo /nonexistent)")")")"; do
  [ -n "$c" ] && ok "$c" && { echo "$c"; exit 0; }
done
echo "qdrift needs a JDK 25 (FFM and the Vector API). None found: JAVA_HOME='${JAVA_HOME:-}'," \
     "no /usr/lib/jvm/temurin-25-jdk-amd64, and the javac on PATH is not 25+." \
     "Install one (e.g. Temurin 25) and set JAVA_HOME to it." >&2
exit 1
