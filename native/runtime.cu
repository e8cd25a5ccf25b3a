// qdrift.h runtime half: devices, memory, streams, events, graphs — thin wrappers that return the
// cudaError_t as an int so Java needs to bind only this library (cudart is linked in statically).
#include "qdrift.h"
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <string.h>

#define S(stream) ((cudaStream_t)(stream))

extern "C" {

const char *qd_error_string(int status) { return cudaGetErrorString((cudaError_t)status); }

int qd_device_count(int *count) { return cudaGetDeviceCount(count); }

int qd_device_info(int device, char *name, int *major, int *minor, size_t *total_memory) {
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) return e;
    strncpy(name, p.name, 255);
    name[255] = 0;
    *major = p.major;
    *minor = p.minor;
    *total_memory = p.totalGlobalMem;
    return cudaSuccess;
}

int qd_set_device(int device) { return cudaSetDevice(device); }
int qd_malloc(void **ptr, size_t bytes) {
    cudaError_t e = cudaMalloc(ptr, bytes);
    // A failed allocation is recoverable (the caller frees its cache and retries): clear the
    // runtime's last-error slot so the next kernel launch does not report this stale error.
    if (e != cudaSuccess) cudaGetLastError();
    return e;
}
int qd_free(void *ptr) { return cudaFree(ptr); }
int qd_malloc_host(void **ptr, size_t bytes) {
    cudaError_t e = cudaMallocHost(ptr, bytes);
    if (e != cudaSuccess) cudaGetLastError();  // recoverable: the caller stages through pageable memory instead
    return e;
}
int qd_free_host(void *ptr) { return cudaFreeHost(ptr); }
// Stream-ordered: inside a graph capture these become the graph's own allocation and free nodes.
int qd_malloc_async(void **ptr, size_t bytes, void *stream) { return cudaMallocAsync(ptr, bytes, S(stream)); }
int qd_free_async(void *ptr, void *stream) { return cudaFreeAsync(ptr, S(stream)); }
int qd_mem_info(size_t *free_bytes, size_t *total_bytes) { return cudaMemGetInfo(free_bytes, total_bytes); }

int qd_memcpy_h2d(void *dst, const void *src, size_t bytes, void *stream) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, S(stream));
    // The host buffer is Java-owned and may go away when we return: wait for the copy.
    return e != cudaSuccess ? e : cudaStreamSynchronize(S(stream));
}

int qd_memcpy_d2h(void *dst, const void *src, size_t bytes, void *stream) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, S(stream));
    return e != cudaSuccess ? e : cudaStreamSynchronize(S(stream));
}

int qd_memset(void *dst, int value, size_t bytes, void *stream) { return cudaMemsetAsync(dst, value, bytes, S(stream)); }

int qd_stream_create(void **stream) { return cudaStreamCreateWithFlags((cudaStream_t *)stream, cudaStreamNonBlocking); }
int qd_stream_destroy(void *stream) { return cudaStreamDestroy(S(stream)); }
int qd_stream_synchronize(void *stream) { return cudaStreamSynchronize(S(stream)); }

int qd_event_create(void **event) { return cudaEventCreate((cudaEvent_t *)event); }
int qd_event_destroy(void *event) { return cudaEventDestroy((cudaEvent_t)event); }
int qd_event_record(void *event, void *stream) { return cudaEventRecord((cudaEvent_t)event, S(stream)); }
int qd_event_elapsed_ms(float *ms, void *start, void *end) {
    cudaError_t e = cudaEventSynchronize((cudaEvent_t)end);
    return e != cudaSuccess ? e : cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end);
}

int qd_graph_begin_capture(void *stream) { return cudaStreamBeginCapture(S(stream), cudaStreamCaptureModeThreadLocal); }

int qd_graph_end_capture(void *stream, void **graph_exec) {
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(S(stream), &g);
    if (e != cudaSuccess) {
        if (g != nullptr) cudaGraphDestroy(g);
        cudaGetLastError();  // a failed capture is reported here; the stream is usable again
        return e;
    }
    e = cudaGraphInstantiate((cudaGraphExec_t *)graph_exec, g, 0);
    cudaGraphDestroy(g);
    return e;
}

int qd_graph_launch(void *graph_exec, void *stream) { return cudaGraphLaunch((cudaGraphExec_t)graph_exec, S(stream)); }
int qd_graph_destroy(void *graph_exec) { return cudaGraphExecDestroy((cudaGraphExec_t)graph_exec); }

// The memory CUDA holds for graphs' allocations (physical, shared by graphs run one after another): its high-water
// mark since the last reset; reset = 1 resets it after reading.
int qd_graph_memory_high(size_t *bytes, int reset) {
    int device;
    cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) return e;
    unsigned long long v = 0;
    e = cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrReservedMemHigh, &v);
    if (e != cudaSuccess) return e;
    *bytes = (size_t)v;
    unsigned long long zero = 0;
    return reset ? cudaDeviceSetGraphMemAttribute(device, cudaGraphMemAttrReservedMemHigh, &zero) : cudaSuccess;
}

// Gives the memory CUDA keeps for graphs' allocations, beyond what graphs alive need now, back to the device.
int qd_graph_memory_trim(void) {
    int device;
    cudaError_t e = cudaGetDevice(&device);
    return e != cudaSuccess ? e : cudaDeviceGraphMemTrim(device);
}

int qd_profiler_start(void) { return cudaProfilerStart(); }
int qd_profiler_stop(void) { return cudaProfilerStop(); }

}  // extern "C"
