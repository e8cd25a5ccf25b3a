package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * FFM bindings of cuBLASLt (libcublasLt.so.13, bound at run time) for the "TN" product of a linear layer,
 * row-major c[m,n] = Σ_k a[m,k]·b[n,k] (a [m × k] activations, b [n × k] weights). In cuBLASLt's column-major
 * terms that is cᵀ (n × m, ld n) = op_T(b as k × n, ld k) · op_N(a as k × m, ld k), alpha = 1, beta = 0. Two
 * kinds: s8 × s8 → s32 (CUBLAS_COMPUTE_32I; the INT8 benchmark's reference point and the s8 GEMM of
 * {@code --int8-gemm cublaslt}, {@link Int8Ops#CUBLASLT}), and FP32 with the bias added in the epilogue
 * (CUBLASLT_EPILOGUE_BIAS; true FP32 or TF32 tensor cores; the FP32 linear layers, sparing a bias pass). A
 * {@link Plan} holds the descriptors and the algorithm cuBLASLt's heuristic picked for one shape.
 */
final class CublasLt implements AutoCloseable {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final int CUBLAS_COMPUTE_32I = 72, CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    private static final int CUDA_R_8I = 3, CUDA_R_32I = 10, CUDA_R_32F = 0, CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
    private static final int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, EPILOGUE_BIAS = 4;
    private static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** sizeof(cublasLtMatmulHeuristicResult_t): algo (8 × uint64) + workspaceSize + state + wavesCount + int[4]. */
    private static final long HEURISTIC_RESULT_BYTES = 64 + 8 + 4 + 4 + 16;

    // cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle);
    private final MethodHandle create;
    // cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle);
    private final MethodHandle destroy;
    // cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t computeType, cudaDataType_t scaleType);
    private final MethodHandle descCreate;
    // cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
    //     const void *buf, size_t sizeInBytes);
    private final MethodHandle descSetAttribute;
    // cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
    private final MethodHandle descDestroy;
    // cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows, uint64_t cols,
    //     int64_t ld);
    private final MethodHandle layoutCreate;
    // cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
    private final MethodHandle layoutDestroy;
    // cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref);
    private final MethodHandle prefCreate;
    // cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
    //     const void *buf, size_t sizeInBytes);
    private final MethodHandle prefSetAttribute;
    // cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
    private final MethodHandle prefDestroy;
    // cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t Adesc,
    //     cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t pref,
    //     int requestedAlgoCount, cublasLtMatmulHeuristicResult_t results[], int *returnAlgoCount);
    private final MethodHandle algoGetHeuristic;
    // cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
    //     cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
    //     cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo,
    //     void *workspace, size_t workspaceSizeInBytes, cudaStream_t stream);
    private final MethodHandle matmul;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment intOne = arena.allocateFrom(JAVA_INT, 1), intZero = arena.allocateFrom(JAVA_INT, 0);
    private final MemorySegment floatOne = arena.allocateFrom(JAVA_FLOAT, 1f), floatZero = arena.allocateFrom(JAVA_FLOAT, 0f);

    CublasLt(SymbolLookup lib) {
        create = bind(lib, "cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = bind(lib, "cublasLtDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        descCreate = bind(lib, "cublasLtMatmulDescCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        descSetAttribute = bind(lib, "cublasLtMatmulDescSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        descDestroy = bind(lib, "cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        layoutCreate = bind(lib, "cublasLtMatrixLayoutCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
                JAVA_LONG));
        layoutDestroy = bind(lib, "cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefCreate = bind(lib, "cublasLtMatmulPreferenceCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefSetAttribute = bind(lib, "cublasLtMatmulPreferenceSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
                JAVA_LONG));
        prefDestroy = bind(lib, "cublasLtMatmulPreferenceDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        algoGetHeuristic = bind(lib, "cublasLtMatmulAlgoGetHeuristic", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        matmul = bind(lib, "cublasLtMatmul", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) create.invokeExact(p), "cublasLtCreate");
            handle = p.get(ADDRESS, 0);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** cuBLASLt from the CUDA 13 toolkit's libcublasLt.so.13, with a handle. */
    static CublasLt open() {
        return new CublasLt(NativeLibraries.system("libcublasLt.so.13"));
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(() -> new IllegalStateException("libcublasLt lacks " + name)), fd);
    }

    private static void check(int status, String what) {
        if (status != 0) throw new CudaException(what + " failed: cublasStatus " + status, status);
    }

    /** Descriptors and the heuristic's algorithm for one m × n × k TN product of one kind. */
    final class Plan implements AutoCloseable {
        final int m, n, k;
        private final String what;
        private final MemorySegment desc, aLayout, bLayout, cLayout, algo, workspace, alpha, beta;
        private final long workspaceBytes;
        private final MemorySegment biasPointer = arena.allocate(ADDRESS);
        /** The heuristic's estimate of the grid's waves (informational). */
        final float waves;

        /** bias: null for none, else a 256-byte aligned device vector (the heuristic reads alignment from the pointer). */
        private Plan(String what, int m, int n, int k, int computeType, int scaleType, int inType, int outType, MemorySegment bias,
                     MemorySegment workspace, long workspaceBytes) throws Throwable {
            this.what = what;
            this.m = m;
            this.n = n;
            this.k = k;
            this.workspace = workspace;
            this.workspaceBytes = workspaceBytes;
            boolean integer = computeType == CUBLAS_COMPUTE_32I;
            alpha = integer ? intOne : floatOne;
            beta = integer ? intZero : floatZero;
            // Built in locals: where a step fails (or the heuristic has no algorithm) what was created is destroyed.
            MemorySegment d = MemorySegment.NULL, al = MemorySegment.NULL, bl = MemorySegment.NULL, cl = MemorySegment.NULL;
            try (Arena a = Arena.ofConfined()) {
                MemorySegment p = a.allocate(ADDRESS);
                check((int) descCreate.invokeExact(p, computeType, scaleType), "cublasLtMatmulDescCreate");
                d = p.get(ADDRESS, 0);
                MemorySegment op = a.allocate(JAVA_INT);
                op.set(JAVA_INT, 0, CUBLAS_OP_T);
                check((int) descSetAttribute.invokeExact(d, DESC_TRANSA, op, 4L), "cublasLtMatmulDescSetAttribute(TRANSA)");
                op.set(JAVA_INT, 0, CUBLAS_OP_N);
                check((int) descSetAttribute.invokeExact(d, DESC_TRANSB, op, 4L), "cublasLtMatmulDescSetAttribute(TRANSB)");
                if (bias != null) {
                    op.set(JAVA_INT, 0, EPILOGUE_BIAS);
                    check((int) descSetAttribute.invokeExact(d, DESC_EPILOGUE, op, 4L), "cublasLtMatmulDescSetAttribute(EPILOGUE)");
                    biasPointer.set(ADDRESS, 0, bias);
                    check((int) descSetAttribute.invokeExact(d, DESC_BIAS_POINTER, biasPointer, 8L),
                            "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
                }
                // cuBLASLt's A = our weights b (k x n column-major, ld k), B = our activations a (k x m, ld k),
                // C = D = our c transposed (n x m column-major, ld n).
                check((int) layoutCreate.invokeExact(p, inType, (long) k, (long) n, (long) k), "cublasLtMatrixLayoutCreate(A)");
                al = p.get(ADDRESS, 0);
                check((int) layoutCreate.invokeExact(p, inType, (long) k, (long) m, (long) k), "cublasLtMatrixLayoutCreate(B)");
                bl = p.get(ADDRESS, 0);
                check((int) layoutCreate.invokeExact(p, outType, (long) n, (long) m, (long) n), "cublasLtMatrixLayoutCreate(C)");
                cl = p.get(ADDRESS, 0);
                check((int) prefCreate.invokeExact(p), "cublasLtMatmulPreferenceCreate");
                MemorySegment pref = p.get(ADDRESS, 0);
                try {
                    MemorySegment ws = a.allocateFrom(JAVA_LONG, workspaceBytes);
                    check((int) prefSetAttribute.invokeExact(pref, PREF_MAX_WORKSPACE_BYTES, ws, 8L), "cublasLtMatmulPreferenceSetAttribute");
                    MemorySegment result = a.allocate(HEURISTIC_RESULT_BYTES, 8), count = a.allocate(JAVA_INT);
                    check((int) algoGetHeuristic.invokeExact(handle, d, al, bl, cl, cl, pref, 1, result, count),
                            "cublasLtMatmulAlgoGetHeuristic");
                    if (count.get(JAVA_INT, 0) < 1 || result.get(JAVA_INT, 72) != 0)
                        throw new CudaException("cuBLASLt has no " + what + " algorithm for " + m + "x" + n + "x" + k, 15);
                    algo = arena.allocate(64, 8).copyFrom(result.asSlice(0, 64));
                    waves = result.get(JAVA_FLOAT, 76);
                } finally {
                    int ignored = (int) prefDestroy.invokeExact(pref);
                }
            } catch (Throwable t) {
                destroy(d, al, bl, cl);
                throw t;
            }
            desc = d;
            aLayout = al;
            bLayout = bl;
            cLayout = cl;
        }

        private void destroy(MemorySegment d, MemorySegment... layouts) throws Throwable {
            for (MemorySegment l : layouts) if (!l.equals(MemorySegment.NULL)) check((int) layoutDestroy.invokeExact(l), "cublasLtMatrixLayoutDestroy");
            if (!d.equals(MemorySegment.NULL)) check((int) descDestroy.invokeExact(d), "cublasLtMatmulDescDestroy");
        }

        /** Row-major c[m,n] = a[m,k] · b[n,k]ᵀ, queued on `stream` (a plan without a bias). */
        void run(MemorySegment a, MemorySegment b, MemorySegment c, MemorySegment stream) throws Throwable {
            check((int) matmul.invokeExact(handle, desc, alpha, b, aLayout, a, bLayout, beta, c, cLayout, c, cLayout, algo, workspace,
                    workspaceBytes, stream), "cublasLtMatmul " + what + " " + m + "x" + n + "x" + k);
        }

        /** Row-major c[m,n] = a[m,k] · b[n,k]ᵀ + bias[n], queued on `stream` (a plan with a bias; bias 256-byte aligned). */
        void run(MemorySegment a, MemorySegment b, MemorySegment bias, MemorySegment c, MemorySegment stream) throws Throwable {
            biasPointer.set(ADDRESS, 0, bias);
            check((int) descSetAttribute.invokeExact(desc, DESC_BIAS_POINTER, biasPointer, 8L), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
            run(a, b, c, stream);
        }

        @Override
        public void close() {
            try {
                destroy(desc, aLayout, bLayout, cLayout);
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    /** A plan for row-major c[m,n] = a[m,k] b[n,k]ᵀ in s8 → s32; `workspace` (device, workspaceBytes) is lent to cuBLASLt. */
    Plan planS8(int m, int n, int k, MemorySegment workspace, long workspaceBytes) throws Throwable {
        return new Plan("s8 TN", m, n, k, CUBLAS_COMPUTE_32I, CUDA_R_32I, CUDA_R_8I, CUDA_R_32I, null, workspace, workspaceBytes);
    }

    /**
     * A plan for row-major c[m,n] = a[m,k] b[n,k]ᵀ + bias[n] in FP32 (tf32: products on TF32 tensor cores, FP32
     * accumulation); `bias` any 256-byte aligned device vector, for the heuristic (each run names its own).
     */
    Plan planF32Bias(int m, int n, int k, boolean tf32, MemorySegment bias, MemorySegment workspace, long workspaceBytes) throws Throwable {
        return new Plan(tf32 ? "TF32 + bias" : "FP32 + bias", m, n, k, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F,
                CUDA_R_32F, CUDA_R_32F, bias, workspace, workspaceBytes);
    }

    @Override
    public void close() {
        try {
            check((int) destroy.invokeExact(handle), "cublasLtDestroy");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        } finally {
            arena.close();
        }
    }
}
