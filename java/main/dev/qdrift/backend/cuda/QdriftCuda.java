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
 * FFM bindings of native/qdrift.h (libqdrift_cuda.so, cudart linked in statically): one method
 * handle per C function, its descriptor next to its prototype. Each wrapper turns a non-zero status
 * into a {@link CudaException} naming the operation.
 */
final class QdriftCuda {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final int CUDA_ERROR_MEMORY_ALLOCATION = 2;

    private final SymbolLookup lib;

    // const char *qd_error_string(int status);
    private final MethodHandle errorString;
    // int qd_device_count(int *count);
    private final MethodHandle deviceCount;
    // int qd_device_info(int device, char *name, int *major, int *minor, size_t *total_memory);
    private final MethodHandle deviceInfo;
    // int qd_set_device(int device);
    private final MethodHandle setDevice;
    // int qd_malloc(void **ptr, size_t bytes);
    private final MethodHandle malloc;
    // int qd_free(void *ptr);
    private final MethodHandle free;
    // int qd_malloc_host(void **ptr, size_t bytes);
    private final MethodHandle mallocHost;
    // int qd_free_host(void *ptr);
    private final MethodHandle freeHost;
    // int qd_malloc_async(void **ptr, size_t bytes, void *stream);
    private final MethodHandle mallocAsync;
    // int qd_free_async(void *ptr, void *stream);
    private final MethodHandle freeAsync;
    // int qd_mem_info(size_t *free_bytes, size_t *total_bytes);
    private final MethodHandle memInfo;
    // int qd_memcpy_h2d(void *dst, const void *src, size_t bytes, void *stream);
    private final MethodHandle memcpyH2d;
    // int qd_memcpy_d2h(void *dst, const void *src, size_t bytes, void *stream);
    private final MethodHandle memcpyD2h;
    // int qd_memset(void *dst, int value, size_t bytes, void *stream);
    private final MethodHandle memset;
    // int qd_stream_create(void **stream);
    private final MethodHandle streamCreate;
    // int qd_stream_destroy(void *stream);
    private final MethodHandle streamDestroy;
    // int qd_stream_synchronize(void *stream);
    private final MethodHandle streamSynchronize;
    // int qd_event_create(void **event);
    private final MethodHandle eventCreate;
    // int qd_event_destroy(void *event);
    private final MethodHandle eventDestroy;
    // int qd_event_record(void *event, void *stream);
    private final MethodHandle eventRecord;
    // int qd_event_elapsed_ms(float *ms, void *start, void *end);
    private final MethodHandle eventElapsed;
    // int qd_graph_begin_capture(void *stream);
    private final MethodHandle graphBegin;
    // int qd_graph_end_capture(void *stream, void **graph_exec);
    private final MethodHandle graphEnd;
    // int qd_graph_launch(void *graph_exec, void *stream);
    private final MethodHandle graphLaunch;
    // int qd_graph_destroy(void *graph_exec);
    private final MethodHandle graphDestroy;
    // int qd_graph_memory_high(size_t *bytes, int reset);
    private final MethodHandle graphMemoryHigh;
    // int qd_graph_memory_trim(void);
    private final MethodHandle graphMemoryTrim;
    // int qd_profiler_start(void); int qd_profiler_stop(void);
    private final MethodHandle profilerStart, profilerStop;
    // int qd_embed(const int *ids, const int *type_ids, const float *word, const float *position, const float *type,
    //              int batch, int seq, int hidden, float *out, void *stream);
    final MethodHandle embed;
    // int qd_round_to_float(const double *x, size_t n, float *y, void *stream);
    final MethodHandle roundToFloat;
    // int qd_widen_to_double(const float *x, size_t n, double *y, void *stream);
    final MethodHandle widenToDouble;
    // int qd_add_layernorm(const float *x, const float *residual, const float *gamma, const float *beta, float eps, int rows,
    //                      int dim, float *out, float *sum, const float *sum_scale, const float *sum_zero_point, int sum_qmin,
    //                      int sum_qmax, const float *out_scale, const float *out_zero_point, int out_qmin, int out_qmax,
    //                      int8_t *q, float q_s, int q_on_grid, int ldq, void *stream);
    final MethodHandle addLayerNorm;
    // int qd_bias_act(float *y, const float *bias, int rows, int cols, int act, void *stream);
    final MethodHandle biasAct;
    // int qd_site_quantize(const float *x, int rows, int cols, int act, const float *q_scale, const float *q_zero_point, int qmin,
    //                      int qmax, int on_grid, float s, int8_t *q, int ldq, void *stream);
    final MethodHandle siteQuantize;
    // int qd_head_pointers(const float *const *bases, const int *row_strides, int count, int batch, int seq, int heads,
    //                      int head_dim, const float **out, void *stream);
    final MethodHandle headPointers;
    // int qd_masked_softmax(float *scores, const int *mask, int batch, int heads, int seq, void *stream);
    final MethodHandle maskedSoftmax;
    // int qd_fused_attention_fits(int seq, int head_dim, int pass);
    final MethodHandle fusedAttentionFits;
    // int qd_fused_attention(const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim, float scale,
    //                        float *ctx, void *stream);
    final MethodHandle fusedAttention;
    // int qd_pool(const float *hidden, const int *mask, int batch, int seq, int dim, int mode, float *out, void *stream);
    final MethodHandle pool;

    // int qd_fake_quant_columns(float *x, int rows, int cols, const float *scale, const float *zero_point, int qmin, int qmax,
    //                           void *stream);
    final MethodHandle fakeQuantColumns;
    // int qd_fake_quant_rows(float *x, int rows, int cols, int bits, int symmetric, void *stream);
    final MethodHandle fakeQuantRows;

    // ---- INT8 (native/int8.cu) ----
    // int qd_quantize_s8_tensor(const float *x, int rows, int cols, float scale, signed char *q, void *stream);
    final MethodHandle quantizeS8Tensor;
    // int qd_quantize_s8_token(const float *x, int rows, int cols, signed char *q, float *scales, void *stream);
    final MethodHandle quantizeS8Token;
    // int qd_quantize_s8_group(const float *x, int rows, int cols, int groups, const float *scales, signed char *q, void *stream);
    final MethodHandle quantizeS8Group;
    // int qd_quantize_s8_tensor_ld(const float *x, int rows, int cols, float scale, signed char *q, int ldq, void *stream);
    final MethodHandle quantizeS8TensorLd;
    // int qd_quantize_s8_token_ld(const float *x, int rows, int cols, signed char *q, int ldq, float *scales, void *stream);
    final MethodHandle quantizeS8TokenLd;
    // int qd_i8_repack(const signed char *src, int rows, int cols, int groups, signed char *dst, int dst_cols, void *stream);
    final MethodHandle i8Repack;
    // int qd_i8_gemm_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, int tile, void *stream);
    final MethodHandle i8GemmS32;
    // int qd_i8_gemm_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
    //                    const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
    //                    int tile, void *stream);
    final MethodHandle i8GemmF32;
    // int qd_i8_dequantize_f32(const int *acc, int m, int n, const float *x_scale, int x_per_row, const float *w_scale,
    //     int w_per_col, const float *bias, const float *residual, int act, float *y, void *stream);
    final MethodHandle i8DequantizeF32;
    // int qd_i8_gemm_wgmma_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, void *stream);
    final MethodHandle i8GemmWgmmaS32;
    // int qd_i8_gemm_wgmma_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
    //                          const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
    //                          void *stream);
    final MethodHandle i8GemmWgmmaF32;
    // int qd_i8_gemm_wgmma_supported(void);
    final MethodHandle i8GemmWgmmaSupported;
    // int qd_i8_gemm_peg_f32(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
    //                        const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
    //                        int tile, void *stream);
    final MethodHandle i8GemmPegF32;
    // int qd_i8_gemm_f16(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
    //                    const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
    //                    int tile, void *stream);
    final MethodHandle i8GemmF16;
    // int qd_i8_gemm_s8(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
    //                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
    //                   signed char *q, int tile, void *stream);
    final MethodHandle i8GemmS8;
    // int qd_i8_gemm_peg_f16(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
    //                        const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
    //                        int tile, void *stream);
    final MethodHandle i8GemmPegF16;
    // int qd_i8_gemm_peg_s8(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
    //                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
    //                       signed char *q, int tile, void *stream);
    final MethodHandle i8GemmPegS8;
    // int qd_i8_gemm_tile_info(int tile, int *bm, int *bn, int *bk, int *warps, int *stages, int *peg);
    private final MethodHandle i8GemmTileInfo;
    // int qd_i8_gemm_pick_tile(int m, int n, int k, int groups, int *tile);
    private final MethodHandle i8GemmPickTile;

    QdriftCuda(SymbolLookup lib) {
        this.lib = lib;
        errorString = bind("qd_error_string", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        deviceCount = bind("qd_device_count", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        deviceInfo = bind("qd_device_info", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        setDevice = bind("qd_set_device", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        malloc = bind("qd_malloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        free = bind("qd_free", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        mallocHost = bind("qd_malloc_host", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        freeHost = bind("qd_free_host", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        mallocAsync = bind("qd_malloc_async", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        freeAsync = bind("qd_free_async", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        memInfo = bind("qd_mem_info", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        memcpyH2d = bind("qd_memcpy_h2d", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        memcpyD2h = bind("qd_memcpy_d2h", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        memset = bind("qd_memset", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS));
        streamCreate = bind("qd_stream_create", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        streamDestroy = bind("qd_stream_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        streamSynchronize = bind("qd_stream_synchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventCreate = bind("qd_event_create", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventDestroy = bind("qd_event_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventRecord = bind("qd_event_record", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        eventElapsed = bind("qd_event_elapsed_ms", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        graphBegin = bind("qd_graph_begin_capture", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        graphEnd = bind("qd_graph_end_capture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        graphLaunch = bind("qd_graph_launch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        graphDestroy = bind("qd_graph_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        graphMemoryHigh = bind("qd_graph_memory_high", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        graphMemoryTrim = bind("qd_graph_memory_trim", FunctionDescriptor.of(JAVA_INT));
        profilerStart = bind("qd_profiler_start", FunctionDescriptor.of(JAVA_INT));
        profilerStop = bind("qd_profiler_stop", FunctionDescriptor.of(JAVA_INT));
        roundToFloat = bind("qd_round_to_float", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));
        widenToDouble = bind("qd_widen_to_double", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));
        embed = bind("qd_embed", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        addLayerNorm = bind("qd_add_layernorm", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_FLOAT,
                JAVA_INT, JAVA_INT, ADDRESS));
        biasAct = bind("qd_bias_act", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        siteQuantize = bind("qd_site_quantize", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        headPointers = bind("qd_head_pointers", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        maskedSoftmax = bind("qd_masked_softmax", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        fusedAttentionFits = bind("qd_fused_attention_fits", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        fusedAttention = bind("qd_fused_attention", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_FLOAT, ADDRESS, ADDRESS));
        fakeQuantColumns = bind("qd_fake_quant_columns", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, ADDRESS));
        fakeQuantRows = bind("qd_fake_quant_rows", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        pool = bind("qd_pool", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        quantizeS8Tensor = bind("qd_quantize_s8_tensor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, ADDRESS));
        quantizeS8Token = bind("qd_quantize_s8_token", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
                ADDRESS));
        quantizeS8Group = bind("qd_quantize_s8_group", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                ADDRESS, ADDRESS));
        i8GemmS32 = bind("qd_i8_gemm_s32", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS));
        i8GemmWgmmaS32 = bind("qd_i8_gemm_wgmma_s32", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS));
        i8GemmWgmmaF32 = bind("qd_i8_gemm_wgmma_f32", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        i8GemmWgmmaSupported = bind("qd_i8_gemm_wgmma_supported", FunctionDescriptor.of(JAVA_INT));
        i8GemmF32 = bind("qd_i8_gemm_f32", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        i8DequantizeF32 = bind("qd_i8_dequantize_f32", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT,
                ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        i8GemmPegF32 = bind("qd_i8_gemm_peg_f32", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        quantizeS8TensorLd = bind("qd_quantize_s8_tensor_ld", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT, ADDRESS));
        quantizeS8TokenLd = bind("qd_quantize_s8_token_ld", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS, ADDRESS));
        i8Repack = bind("qd_i8_repack", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT,
                ADDRESS));
        i8GemmF16 = bind("qd_i8_gemm_f16", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        i8GemmS8 = bind("qd_i8_gemm_s8", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        i8GemmPegF16 = bind("qd_i8_gemm_peg_f16", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        i8GemmPegS8 = bind("qd_i8_gemm_peg_s8", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        i8GemmTileInfo = bind("qd_i8_gemm_tile_info", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS));
        i8GemmPickTile = bind("qd_i8_gemm_pick_tile", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    }

    private MethodHandle bind(String name, FunctionDescriptor fd) {
        return bind(lib, name, fd);
    }

    /** A downcall handle of one C function of our library (kernel groups with bindings of their own use it too). */
    static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(() -> new IllegalStateException("libqdrift_cuda lacks " + name)), fd);
    }

    String errorString(int status) {
        try {
            return ((MemorySegment) errorString.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "status " + status;
        }
    }

    /** A call of one of the kernel launchers: returns its status. */
    @FunctionalInterface
    interface NativeCall {
        int run() throws Throwable;
    }

    /** Runs a kernel launcher; a non-zero status becomes a CudaException naming the operation and sizes. */
    void launch(String what, NativeCall call) {
        int status;
        try {
            status = call.run();
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": " + t, t);
        }
        check(status, what);
    }

    /** Throws a CudaException (OutOfMemory for cudaErrorMemoryAllocation) when status is not 0. */
    void check(int status, String what) {
        if (status == 0) return;
        String msg = what + ": " + errorString(status) + " (CUDA status " + status + ")";
        throw status == CUDA_ERROR_MEMORY_ALLOCATION ? new CudaException.OutOfMemory(msg, status) : new CudaException(msg, status);
    }

    int deviceCount() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check((int) deviceCount.invokeExact(n), "cudaGetDeviceCount");
            return n.get(JAVA_INT, 0);
        }
    }

    /** Name, compute capability and memory of a device, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)". */
    String deviceDescription(int device) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256), major = a.allocate(JAVA_INT), minor = a.allocate(JAVA_INT), mem = a.allocate(JAVA_LONG);
            check((int) deviceInfo.invokeExact(device, name, major, minor, mem), "cudaGetDeviceProperties");
            return String.format("%s (sm_%d%d, %.1f GiB)", name.getString(0), major.get(JAVA_INT, 0), minor.get(JAVA_INT, 0),
                    mem.get(JAVA_LONG, 0) / (double) (1L << 30));
        }
    }

    void setDevice(int device) throws Throwable {
        check((int) setDevice.invokeExact(device), "cudaSetDevice(" + device + ")");
    }

    MemorySegment malloc(long bytes) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) malloc.invokeExact(p, bytes), "cudaMalloc(" + bytes + " bytes)");
            return p.get(ADDRESS, 0);
        }
    }

    void free(MemorySegment p) throws Throwable {
        check((int) free.invokeExact(p), "cudaFree");
    }

    /** Page-locked host memory of `bytes`, as a segment of that size. */
    MemorySegment mallocHost(long bytes) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) mallocHost.invokeExact(p, bytes), "cudaMallocHost(" + bytes + " bytes)");
            return p.get(ADDRESS, 0).reinterpret(bytes);
        }
    }

    void freeHost(MemorySegment p) throws Throwable {
        check((int) freeHost.invokeExact(p), "cudaFreeHost");
    }

    /** cudaMallocAsync on stream: captured into a CUDA graph as its own allocation. */
    MemorySegment mallocAsync(long bytes, MemorySegment stream) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) mallocAsync.invokeExact(p, bytes, stream), "cudaMallocAsync(" + bytes + " bytes)");
            return p.get(ADDRESS, 0);
        }
    }

    void freeAsync(MemorySegment p, MemorySegment stream) throws Throwable {
        check((int) freeAsync.invokeExact(p, stream), "cudaFreeAsync");
    }

    /** {free, total} device memory in bytes. */
    long[] memInfo() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG), t = a.allocate(JAVA_LONG);
            check((int) memInfo.invokeExact(f, t), "cudaMemGetInfo");
            return new long[] {f.get(JAVA_LONG, 0), t.get(JAVA_LONG, 0)};
        }
    }

    void copyToDevice(MemorySegment dst, MemorySegment src, long bytes, MemorySegment stream) throws Throwable {
        check((int) memcpyH2d.invokeExact(dst, src, bytes, stream), "cudaMemcpy host->device (" + bytes + " bytes)");
    }

    void copyToHost(MemorySegment dst, MemorySegment src, long bytes, MemorySegment stream) throws Throwable {
        check((int) memcpyD2h.invokeExact(dst, src, bytes, stream), "cudaMemcpy device->host (" + bytes + " bytes)");
    }

    void memset(MemorySegment dst, int value, long bytes, MemorySegment stream) throws Throwable {
        check((int) memset.invokeExact(dst, value, bytes, stream), "cudaMemset (" + bytes + " bytes)");
    }

    MemorySegment streamCreate() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) streamCreate.invokeExact(p), "cudaStreamCreate");
            return p.get(ADDRESS, 0);
        }
    }

    void streamDestroy(MemorySegment s) throws Throwable {
        check((int) streamDestroy.invokeExact(s), "cudaStreamDestroy");
    }

    void synchronize(MemorySegment s) throws Throwable {
        check((int) streamSynchronize.invokeExact(s), "cudaStreamSynchronize");
    }

    MemorySegment eventCreate() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) eventCreate.invokeExact(p), "cudaEventCreate");
            return p.get(ADDRESS, 0);
        }
    }

    void eventDestroy(MemorySegment e) throws Throwable {
        check((int) eventDestroy.invokeExact(e), "cudaEventDestroy");
    }

    void eventRecord(MemorySegment e, MemorySegment stream) throws Throwable {
        check((int) eventRecord.invokeExact(e, stream), "cudaEventRecord");
    }

    float elapsedMs(MemorySegment start, MemorySegment end) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check((int) eventElapsed.invokeExact(ms, start, end), "cudaEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        }
    }

    void beginCapture(MemorySegment stream) throws Throwable {
        check((int) graphBegin.invokeExact(stream), "cudaStreamBeginCapture");
    }

    MemorySegment endCapture(MemorySegment stream) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) graphEnd.invokeExact(stream, p), "cudaStreamEndCapture / cudaGraphInstantiate");
            return p.get(ADDRESS, 0);
        }
    }

    void launchGraph(MemorySegment exec, MemorySegment stream) throws Throwable {
        check((int) graphLaunch.invokeExact(exec, stream), "cudaGraphLaunch");
    }

    void destroyGraph(MemorySegment exec) throws Throwable {
        check((int) graphDestroy.invokeExact(exec), "cudaGraphExecDestroy");
    }

    /** Gives the memory CUDA keeps for graphs' allocations, beyond what the graphs need now, back to the device. */
    void trimGraphMemory() throws Throwable {
        check((int) graphMemoryTrim.invokeExact(), "cudaDeviceGraphMemTrim");
    }

    /** The high-water mark of the memory CUDA holds for graphs' allocations; reset: start a new mark after reading. */
    long graphMemoryHigh(boolean reset) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment b = a.allocate(JAVA_LONG);
            check((int) graphMemoryHigh.invokeExact(b, reset ? 1 : 0), "cudaDeviceGetGraphMemAttribute");
            return b.get(JAVA_LONG, 0);
        }
    }

    void profiler(boolean on) throws Throwable {
        check(on ? (int) profilerStart.invokeExact() : (int) profilerStop.invokeExact(), on ? "cudaProfilerStart" : "cudaProfilerStop");
    }

    /** INT8 GEMM tile `tile` as {rows, columns, k bytes, warps, stages, peg (1 if the PEG GEMM has it)}, or null past the last. */
    int[] i8GemmTileInfo(int tile) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT, 6);
            int status = (int) i8GemmTileInfo.invokeExact(tile, v, v.asSlice(4), v.asSlice(8), v.asSlice(12), v.asSlice(16),
                    v.asSlice(20));
            return status != 0 ? null : v.toArray(JAVA_INT);
        }
    }

    /** The tile the INT8 GEMM launchers pick for an m x n x k problem (groups 0: plain, else PEG) on the current device. */
    int i8GemmPickTile(int m, int n, int k, int groups) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment t = a.allocate(JAVA_INT);
            check((int) i8GemmPickTile.invokeExact(m, n, k, groups, t), "qd_i8_gemm_pick_tile");
            return t.get(JAVA_INT, 0);
        }
    }
}
