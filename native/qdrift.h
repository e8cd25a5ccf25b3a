/*
 * qdrift.h — the one C ABI the Java side binds (through FFM, see
 * java/main/dev/qdrift/backend/cuda/QdriftCuda.java, one method handle per function below).
 *
 * Plain C types only. Every function returns a status: 0 on success, otherwise a cudaError_t value
 * (qd_error_string names it). Pointers to device memory are void* / float* / int*; `stream` is a
 * cudaStream_t passed as void* (NULL = the legacy default stream). All matrices are row-major.
 * Kernels are asynchronous on `stream`; errors of a launch are reported by the call that launched it
 * (configuration errors) or by the next synchronizing call (execution errors).
 */
#ifndef QDRIFT_H
#define QDRIFT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime: devices, memory, streams, events ---- */
const char *qd_error_string(int status);
int qd_device_count(int *count);
/* name: at least 256 bytes. */
int qd_device_info(int device, char *name, int *major, int *minor, size_t *total_memory);
int qd_set_device(int device);
int qd_malloc(void **ptr, size_t bytes);
int qd_free(void *ptr);
int qd_mem_info(size_t *free_bytes, size_t *total_bytes);
int qd_memcpy_h2d(void *dst, const void *src, size_t bytes, void *stream);
int qd_memcpy_d2h(void *dst, const void *src, size_t bytes, void *stream);
int qd_memset(void *dst, int value, size_t bytes, void *stream);
int qd_stream_create(void **stream);
int qd_stream_destroy(void *stream);
int qd_stream_synchronize(void *stream);
int qd_event_create(void **event);
int qd_event_destroy(void *event);
int qd_event_record(void *event, void *stream);
int qd_event_elapsed_ms(float *ms, void *start, void *end);
/* CUDA Graphs: capture the work queued on `stream` between begin and end, replay it with launch. */
int qd_graph_begin_capture(void *stream);
int qd_graph_end_capture(void *stream, void **graph_exec);
int qd_graph_launch(void *graph_exec, void *stream);
int qd_graph_destroy(void *graph_exec);

/* ---- FP32 encoder kernels (CPU counterparts: java/main/dev/qdrift/backend/cpu) ---- */

/* out[r,:] = word[ids[r],:] + position[r % seq,:] + type[type_ids[r],:], r < batch*seq. */
int qd_embed(const int *ids, const int *type_ids, const float *word, const float *position, const float *type,
             int batch, int seq, int hidden, float *out, void *stream);

/* out = LayerNorm(x + residual) * gamma + beta per row; residual and sum may be NULL; out may alias
 * x or residual; sum (if not NULL) receives x + residual. */
int qd_add_layernorm(const float *x, const float *residual, const float *gamma, const float *beta, float eps,
                     int rows, int dim, float *out, float *sum, void *stream);

/* y[r,c] = act(y[r,c] + bias[c]); act: 0 none, 1 exact-erf GELU, 2 tanh. */
int qd_bias_act(float *y, const float *bias, int rows, int cols, int act, void *stream);

/* [batch*seq, heads*head_dim] -> [batch, heads, seq, head_dim], scaled by `scale`. */
int qd_split_heads(const float *in, int batch, int seq, int heads, int head_dim, float scale, float *out, void *stream);
/* [batch, heads, seq, head_dim] -> [batch*seq, heads*head_dim]. */
int qd_merge_heads(const float *in, int batch, int seq, int heads, int head_dim, float *out, void *stream);

/* In place over scores [batch, heads, seq, seq]: softmax along the last dim with keys whose
 * mask[b, key] == 0 excluded (probability exactly 0). */
int qd_masked_softmax(float *scores, const int *mask, int batch, int heads, int seq, void *stream);

/* out[b,:] = hidden[b,0,:] (mode 0, CLS) or the mean over tokens with mask 1 (mode 1). */
int qd_pool(const float *hidden, const int *mask, int batch, int seq, int dim, int mode, float *out, void *stream);

#ifdef __cplusplus
}
#endif
#endif
