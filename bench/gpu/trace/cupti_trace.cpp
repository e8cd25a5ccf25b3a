// A timeline tracer for hosts without Nsight Systems: loaded into any CUDA process by the driver
// (CUDA_INJECTION64_PATH=libqd_trace.so), it records through CUPTI's activity API every kernel, memcpy,
// memset and runtime / driver API call with its start and end (ns, one clock for host and GPU) and writes
// them as CSV to $QD_TRACE_FILE when the process exits. bench/gpu/trace/gaps.py reads the CSV: where the
// GPU sat idle inside a cudaProfilerStart / Stop range, and what the host was doing meanwhile.
//
// Build (here, with nvcc's CUPTI headers): see bench/gpu/trace/build.sh.
#include <cupti.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace {

FILE *out = nullptr;
std::mutex out_lock;
constexpr size_t kBufferBytes = 8 << 20;

#define CUPTI_OR_WARN(call)                                                                       \
    do {                                                                                          \
        CUptiResult r_ = (call);                                                                  \
        if (r_ != CUPTI_SUCCESS) {                                                                \
            const char *msg_ = nullptr;                                                           \
            cuptiGetResultString(r_, &msg_);                                                      \
            std::fprintf(stderr, "qd_trace: %s failed: %s\n", #call, msg_ ? msg_ : "?");         \
        }                                                                                         \
    } while (0)

void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *buffer = static_cast<uint8_t *>(std::aligned_alloc(8, kBufferBytes));
    *size = kBufferBytes;
    *max_records = 0;
}

const char *api_name(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) {
    const char *name = nullptr;
    if (cuptiGetCallbackName(domain, cbid, &name) != CUPTI_SUCCESS || !name) return "?";
    return name;
}

// CSV: kind,start_ns,end_ns,name,stream,correlation
void write_record(const CUpti_Activity *record) {
    switch (record->kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {  // the only kernel kind enabled (below)
        auto *k = reinterpret_cast<const CUpti_ActivityKernel10 *>(record);
        std::fprintf(out, "kernel,%llu,%llu,%s,%u,%u\n", (unsigned long long)k->start, (unsigned long long)k->end,
                     k->name, k->streamId, k->correlationId);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        auto *m = reinterpret_cast<const CUpti_ActivityMemcpy6 *>(record);
        std::fprintf(out, "memcpy,%llu,%llu,copy kind %u %llu bytes,%u,%u\n", (unsigned long long)m->start,
                     (unsigned long long)m->end, (unsigned)m->copyKind, (unsigned long long)m->bytes, m->streamId,
                     m->correlationId);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        auto *m = reinterpret_cast<const CUpti_ActivityMemset4 *>(record);
        std::fprintf(out, "memset,%llu,%llu,%llu bytes,%u,%u\n", (unsigned long long)m->start, (unsigned long long)m->end,
                     (unsigned long long)m->bytes, m->streamId, m->correlationId);
        break;
    }
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: {
        auto *a = reinterpret_cast<const CUpti_ActivityAPI *>(record);
        bool runtime = record->kind == CUPTI_ACTIVITY_KIND_RUNTIME;
        std::fprintf(out, "%s,%llu,%llu,%s,,%u\n", runtime ? "runtime" : "driver", (unsigned long long)a->start,
                     (unsigned long long)a->end,
                     api_name(runtime ? CUPTI_CB_DOMAIN_RUNTIME_API : CUPTI_CB_DOMAIN_DRIVER_API, a->cbid), a->correlationId);
        break;
    }
    default:
        break;
    }
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t *buffer, size_t, size_t valid) {
    std::lock_guard<std::mutex> guard(out_lock);
    CUpti_Activity *record = nullptr;
    while (out && cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) write_record(record);
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(context, stream, &dropped) == CUPTI_SUCCESS && dropped > 0)
        std::fprintf(stderr, "qd_trace: %zu activity records dropped: the trace has holes\n", dropped);
    std::free(buffer);
}

void flush_at_exit() {
    cuptiActivityFlushAll(1);
    std::lock_guard<std::mutex> guard(out_lock);
    if (out) std::fclose(out);
    out = nullptr;
}

}  // namespace

// Called by the CUDA driver when it loads this library through CUDA_INJECTION64_PATH.
extern "C" int InitializeInjection(void) {
    const char *path = std::getenv("QD_TRACE_FILE");
    out = std::fopen(path ? path : "qd_trace.csv", "w");
    if (!out) {
        std::perror("qd_trace: cannot open the trace file");
        return 0;
    }
    std::fprintf(out, "kind,start_ns,end_ns,name,stream,correlation\n");
    CUPTI_OR_WARN(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed));
    CUPTI_OR_WARN(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
    CUPTI_OR_WARN(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY));
    CUPTI_OR_WARN(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET));
    CUPTI_OR_WARN(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME));
    CUPTI_OR_WARN(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER));
    std::atexit(flush_at_exit);
    return 1;
}
