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
 * FFM bindings of cuBLAS (libcublas.so.13, bound at run time: the build machine has no cuBLAS). cuBLAS
 * is column-major; {@link #gemmRowMajorNT} and friends state the row-major product each call computes.
 * Math mode CUBLAS_DEFAULT_MATH by default: true FP32, no TF32 (so GPU results compare with the FP32 CPU
 * reference); {@link #useTf32} switches the FP32 products to TF32 tensor cores (inputs rounded to a 10-bit
 * mantissa, FP32 accumulation) for callers that trade that rounding for speed.
 */
final class Cublas implements AutoCloseable {
    static final int OP_N = 0, OP_T = 1;
    private static final int CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3;
    private static final Linker LINKER = Linker.nativeLinker();

    // cublasStatus_t cublasCreate_v2(cublasHandle_t *handle);
    private final MethodHandle create;
    // cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
    private final MethodHandle destroy;
    // cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream);
    private final MethodHandle setStream;
    // cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes);
    private final MethodHandle setWorkspace;
    // cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
    private final MethodHandle setMathMode;
    // cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    //     const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc);
    private final MethodHandle sgemm;
    // cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
    //     int k, const float *alpha, const float *const Aarray[], int lda, const float *const Barray[], int ldb,
    //     const float *beta, float *const Carray[], int ldc, int batchCount);
    private final MethodHandle sgemmBatched;
    // cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    //     const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B, cudaDataType_t Btype, int ldb,
    //     const void *beta, void *C, cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType, cublasGemmAlgo_t algo);
    private final MethodHandle gemmEx;
    static final int CUDA_R_32F = 0, CUDA_R_16F = 2, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1;

    /**
     * The handle's workspace, ours rather than cuBLAS's default pool: a graph recording (CudaBackend.record) then sees the
     * same workspace as the unrecorded run, instead of cuBLAS allocating one per recording. 32 MiB, cuBLAS's figure for Hopper.
     */
    static final long WORKSPACE = 32L << 20;
    private final QdriftCuda cuda;
    private final MemorySegment handle, workspace;
    private final MemorySegment one = Arena.global().allocateFrom(JAVA_FLOAT, 1f), zero = Arena.global().allocateFrom(JAVA_FLOAT, 0f);
    /** The host alpha of the batched products, written before each call (cuBLAS reads it during the call: host pointer mode). */
    private final MemorySegment alpha = Arena.global().allocate(JAVA_FLOAT);

    Cublas(SymbolLookup lib, QdriftCuda cuda, MemorySegment stream) {
        this.cuda = cuda;
        create = bind(lib, "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = bind(lib, "cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        setStream = bind(lib, "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        setMathMode = bind(lib, "cublasSetMathMode", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        setWorkspace = bind(lib, "cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        sgemm = bind(lib, "cublasSgemm_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        sgemmBatched = bind(lib, "cublasSgemmBatched", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT));
        gemmEx = bind(lib, "cublasGemmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) create.invokeExact(p), "cublasCreate");
            handle = p.get(ADDRESS, 0);
            check((int) setStream.invokeExact(handle, stream), "cublasSetStream");
            workspace = cuda.malloc(WORKSPACE);
            check((int) setWorkspace.invokeExact(handle, workspace, WORKSPACE), "cublasSetWorkspace"); // after SetStream, which resets it
            check((int) setMathMode.invokeExact(handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** FP32 products on TF32 tensor cores (on) or in true FP32 (off, the default). Takes effect for later calls. */
    void useTf32(boolean on) {
        try {
            check((int) setMathMode.invokeExact(handle, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(() -> new IllegalStateException("libcublas lacks " + name)), fd);
    }

    private static void check(int status, String what) {
        if (status != 0) throw new CudaException(what + " failed: cublasStatus " + status, status);
    }

    /**
     * Row-major y[m,n] = x[m,k] w^T (+ y when accumulate), x [m,k] and w [n,k]: a linear layer (w its weight), or its
     * input gradient dY W (w = W^T).
     */
    void gemmRowMajorNT(MemorySegment x, MemorySegment w, MemorySegment y, int m, int n, int k, boolean accumulate) throws Throwable {
        MemorySegment beta = accumulate ? one : zero; // a local: invokeExact would type the conditional as Object
        check((int) sgemm.invokeExact(handle, OP_T, OP_N, n, m, k, one, w, k, x, k, beta, y, n),
                "cublasSgemm (linear " + m + "x" + k + " -> " + n + ")");
    }

    /**
     * Row-major y[m,n] = x[m,k] w^T with x, w [n,k] and y in FP16 (IEEE binary16), FP32 accumulation
     * (cublasGemmEx, CUBLAS_COMPUTE_32F, tensor cores): the FP16 reference point of the INT8 benchmark.
     */
    void gemmRowMajorNTHalf(MemorySegment x, MemorySegment w, MemorySegment y, int m, int n, int k) throws Throwable {
        check((int) gemmEx.invokeExact(handle, OP_T, OP_N, n, m, k, one, w, CUDA_R_16F, k, x, CUDA_R_16F, k, zero, y, CUDA_R_16F, n,
                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), "cublasGemmEx FP16 (linear " + m + "x" + k + " -> " + n + ")");
    }

    /**
     * Row-major y[m,n] = x[m,k] w^T (+ y when accumulate) with x [m,k] and w [n,k] in FP16 and y in FP32, FP32 accumulation
     * (cublasGemmEx, CUBLAS_COMPUTE_32F, tensor cores): the backward's input gradients under FP16 products.
     */
    void gemmRowMajorNTHalfInputs(MemorySegment x, MemorySegment w, MemorySegment y, int m, int n, int k, boolean accumulate)
            throws Throwable {
        MemorySegment beta = accumulate ? one : zero;
        check((int) gemmEx.invokeExact(handle, OP_T, OP_N, n, m, k, one, w, CUDA_R_16F, k, x, CUDA_R_16F, k, beta, y, CUDA_R_32F, n,
                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), "cublasGemmEx FP16 in, FP32 out (input gradient " + m + "x" + k + " -> " + n + ")");
    }

    /*
     * Attention's batched products take device arrays of `batch` matrix pointers (CudaBackend#headPointers): the t x d
     * operands are heads read or written in place, each operand's rows its own `ld` floats apart (the row width of its
     * buffer: heads*d, or 3 heads*d inside a packed q | k | v buffer); the t x t score matrices are dense.
     */

    /** For each of `batch` pointer triples: row-major s[t,t] = scale q[t,d] k[t,d]^T (attention scores). */
    void batchedScores(MemorySegment q, int ldq, MemorySegment k, int ldk, MemorySegment s, int t, int d, float scale, int batch)
            throws Throwable {
        alpha.set(JAVA_FLOAT, 0, scale);
        check((int) sgemmBatched.invokeExact(handle, OP_T, OP_N, t, t, d, alpha, k, ldk, q, ldq, zero, s, t, batch),
                "cublasSgemmBatched (scores " + batch + " x " + t + "x" + t + ")");
    }

    /** For each of `batch` pointer triples: row-major c[t,d] = scale p[t,t] v[t,d] (attention context). */
    void batchedContext(MemorySegment p, MemorySegment v, int ldv, MemorySegment c, int ldc, int t, int d, float scale, int batch)
            throws Throwable {
        alpha.set(JAVA_FLOAT, 0, scale);
        check((int) sgemmBatched.invokeExact(handle, OP_N, OP_N, d, t, t, alpha, v, ldv, p, t, zero, c, ldc, batch),
                "cublasSgemmBatched (context " + batch + " x " + t + "x" + d + ")");
    }

    /** For each of `batch` pointer triples: row-major c[t,d] = scale p[t,t]^T v[t,d] (attention's backward: dV = P^T dC, dK = dS^T Q). */
    void batchedTransposedContext(MemorySegment p, MemorySegment v, int ldv, MemorySegment c, int ldc, int t, int d, float scale,
                                  int batch) throws Throwable {
        alpha.set(JAVA_FLOAT, 0, scale);
        check((int) sgemmBatched.invokeExact(handle, OP_N, OP_T, d, t, t, alpha, v, ldv, p, t, zero, c, ldc, batch),
                "cublasSgemmBatched (transposed context " + batch + " x " + t + "x" + d + ")");
    }

    @Override
    public void close() {
        try {
            check((int) destroy.invokeExact(handle), "cublasDestroy");
            cuda.free(workspace);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
