# qdrift build. Finds JDK 25 itself (tools/find-jdk.sh); Maven does the Java side, nvcc the CUDA side.
SHELL := /bin/bash
JDK := $(shell tools/find-jdk.sh)
ifeq ($(JDK),)
$(error no JDK 25 found, see the message above)
endif
export JAVA_HOME := $(JDK)
MVN := mvn -B -q

.PHONY: build test demo bench-cpu clean native gpu-bundle gpu-harness gpu-test

HAVE_NVCC := $(shell command -v $(or $(NVCC),nvcc) 2>/dev/null)

## build: compile and package the CLI (target/qdrift.jar + target/lib), with the CUDA library when nvcc is here
build: $(if $(HAVE_NVCC),native)
	$(MVN) package -DskipTests

## test: the whole test suite (what CI runs); GPU tests skip with a reason on machines without one
test:
	$(MVN) verify

## demo: build, then run the main job on the built-in model and data
demo: build
	./qdrift demo

## bench-cpu: JMH, our CPU encoder vs ONNX Runtime (MiniLM batch 32 x seq 128) and the float32 IG vs the float64 one (BENCH=encoder or ig: one of them)
bench-cpu: build
	$(MVN) test-compile
	$(JDK)/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
	  -cp "target/test-classes:target/qdrift.jar:$$(cat target/test-classpath.txt)" \
	  dev.qdrift.bench.CpuBenchReport $(BENCH)

clean:
	$(MVN) clean

NVCC ?= nvcc
CUDA_ARCHS := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
              -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90a,code=sm_90a
CUDA_SOURCES := $(wildcard native/*.cu) $(wildcard native/*.h) $(wildcard cuda/*.cuh)
# The flags bench/gpu/wgmma-check.sh builds its harness with (a watchdog turns a pipeline deadlock into a trap).
HARNESS_FLAGS := -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -Icuda -Inative -DQD_WGMMA_WATCHDOG_NS=5000000000ull \
                 -Xptxas -v,-warn-spills

## native: the CUDA library (target/native/libqdrift_cuda.so, packed into the jar by the next build)
native: target/native/libqdrift_cuda.so
target/native/libqdrift_cuda.so: $(CUDA_SOURCES)
	@mkdir -p target/native
	$(NVCC) -O3 -std=c++17 -shared -Xcompiler -fPIC -Icuda -Inative $(CUDA_ARCHS) -Xptxas -warn-spills \
	  -o $@ $(filter %.cu,$^)

## gpu-bundle: what a GPU host without Java needs, in .gpu/ (JRE, jars, CUDA library inside the jar)
gpu-bundle: native
	$(MVN) package -DskipTests
	$(MVN) test-compile
	JRE_MODULES=java.logging,java.management,jdk.zipfs ../shared/gpu/jre.sh .gpu
	rm -rf .gpu/lib && mkdir -p .gpu/lib
	cp target/qdrift.jar .gpu/qdrift.jar
	$(JDK)/bin/jar cf .gpu/qdrift-tests.jar -C target/test-classes .
	cd target/lib && cp picocli-*.jar jackson-*.jar commons-math3-*.jar slf4j-*.jar ../../.gpu/lib/
	$(MVN) dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 -DoutputDirectory=.gpu/lib
	mv .gpu/lib/junit-platform-console-standalone-*.jar .gpu/lib/junit-platform-console-standalone.jar
	du -sh .gpu

## gpu-harness: the standalone wgmma check (bench/gpu/wgmma_check.cu, sm_90a) into .gpu-h/, for bench/gpu/verify-run.sh
## (HARNESS_DEFS: extra -D switches and HARNESS_BIN: where it goes, for bench/gpu/variants-build.sh)
HARNESS_BIN ?= .gpu-h/wgmma_check
gpu-harness: $(CUDA_SOURCES) bench/gpu/wgmma_check.cu
	@mkdir -p .gpu-h/obj $(dir $(HARNESS_BIN))
	$(NVCC) $(HARNESS_FLAGS) $(HARNESS_DEFS) -c native/int8_wgmma.cu -o .gpu-h/obj/int8_wgmma.o > .gpu-h/build-wgmma.txt 2>&1
	$(NVCC) $(HARNESS_FLAGS) $(HARNESS_DEFS) -c native/int8.cu -o .gpu-h/obj/int8.o > .gpu-h/build-int8.txt 2>&1
	$(NVCC) $(HARNESS_FLAGS) $(HARNESS_DEFS) -c bench/gpu/wgmma_check.cu -o .gpu-h/obj/wgmma_check.o > .gpu-h/build-check.txt 2>&1
	$(NVCC) -gencode arch=compute_90a,code=sm_90a .gpu-h/obj/*.o -ldl -o $(HARNESS_BIN)
	cat .gpu-h/build-*.txt > $(HARNESS_BIN).build.txt && rm -rf .gpu-h/obj .gpu-h/build-*.txt

## gpu-test: on the GPU host, after gpu-bundle here: kernels and encoder vs CPU, memory, OOM, sanitizers
gpu-test:
	tools/gpu-run.sh tests
