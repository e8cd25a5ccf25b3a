# qdrift build. Finds JDK 25 itself (tools/find-jdk.sh); Maven does the Java side, nvcc the CUDA side.
SHELL := /bin/bash
JDK := $(shell tools/find-jdk.sh)
ifeq ($(JDK),)
$(error no JDK 25 found, see the message above)
endif
export JAVA_HOME := $(JDK)
MVN := mvn -B -q

.PHONY: build test demo bench-cpu clean

## build: compile and package the CLI (target/qdrift.jar + target/lib)
build:
	$(MVN) package -DskipTests

## test: the whole test suite (what CI runs); GPU tests skip with a reason on machines without one
test:
	$(MVN) verify

## demo: build, then run the main job on the built-in model and data
demo: build
	./qdrift demo

## bench-cpu: JMH, our CPU encoder vs ONNX Runtime, MiniLM batch 32 x seq 128
bench-cpu: build
	$(MVN) test-compile
	$(JDK)/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
	  -cp "target/test-classes:target/qdrift.jar:$$(cat target/test-classpath.txt)" \
	  dev.qdrift.bench.CpuBenchReport

clean:
	$(MVN) clean
