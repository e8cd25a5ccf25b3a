# Sourced by the GPU host scripts (no Java there): unpacks the carried JRE once into /tmp/jre and puts it on PATH;
# sets G (the bundle `make gpu-bundle` wrote: $BUNDLE, default .gpu), CP (qdrift's jars, its tests and their
# libraries) and JAVA (java with the flags qdrift needs).
G=${BUNDLE:-.gpu}
[[ -x /tmp/jre/bin/java ]] || tar -xJf "$G/jre.tar.xz" -C /tmp
export PATH=/tmp/jre/bin:$PATH
CP="$G/qdrift.jar:$G/qdrift-tests.jar:$(ls "$G"/lib/*.jar | tr '\n' ':')"
JAVA=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g)
