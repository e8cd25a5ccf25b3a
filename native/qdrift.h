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
#include <stdint.h>

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
/* Page-locked host memory (cudaMallocHost): the staging buffer of uploads and downloads. */
int qd_malloc_host(void **ptr, size_t bytes);
int qd_free_host(void *ptr);
int qd_malloc_async(void **ptr, size_t bytes, void *stream);
int qd_free_async(void *ptr, void *stream);
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
int qd_graph_memory_high(size_t *bytes, int reset);
int qd_graph_memory_trim(void);
/* Profiler range (cudaProfilerStart / Stop): what `ncu --profile-from-start off` profiles. */
int qd_profiler_start(void);
int qd_profiler_stop(void);

/* ---- FP32 encoder kernels (CPU counterparts: java/main/dev/qdrift/backend/cpu) ---- */

/* out[r,:] = word[ids[r],:] + position[r % seq,:] + type[type_ids[r],:], r < batch*seq. */
int qd_embed(const int *ids, const int *type_ids, const float *word, const float *position, const float *type,
             int batch, int seq, int hidden, float *out, void *stream);

/* out = LayerNorm(x + residual) * gamma + beta per row; residual and sum may be NULL; out may alias
 * x or residual; sum (if not NULL) receives x + residual. The quantized sites around it, each fake-quantized per
 * column as qd_fake_quant_columns does, in the same pass: with sum_scale (then sum_zero_point and sum too) the sum
 * before it is stored and normalized; with out_scale (then out_zero_point) the output; NULL scales for none.
 * q not NULL: the output also as the next s8 layer's operand, quantized with its static input scale q_s as
 * qd_quantize_s8_tensor_ld quantizes the stored output (the same bytes), into rows of ldq >= dim bytes (ldq % 4 == 0,
 * columns past dim zeroed, q 4-byte aligned); only for rows of dim % 4 == 0 columns, at most 1024 (else
 * cudaErrorInvalidValue). Rows of such widths run one warp per row and need every float pointer 16-byte aligned (else
 * cudaErrorMisalignedAddress); other widths one block per row. q_on_grid: the output's grid is q_s itself (every column's
 * scale q_s, zero point 0, range within [-127, 127], q_s a normal float): the output and q from the grid's level, the
 * same values with one division instead of two. */
int qd_add_layernorm(const float *x, const float *residual, const float *gamma, const float *beta, float eps, int rows, int dim,
                     float *out, float *sum, const float *sum_scale, const float *sum_zero_point, int sum_qmin, int sum_qmax,
                     const float *out_scale, const float *out_zero_point, int out_qmin, int out_qmax, int8_t *q, float q_s,
                     int q_on_grid, int ldq, void *stream);

/* y[r,c] = act(y[r,c] + bias[c]); act: 0 none, 1 exact-erf GELU, 2 tanh. */
int qd_bias_act(float *y, const float *bias, int rows, int cols, int act, void *stream);

/* A quantized site and the s8 layer it feeds, in one pass: q = the layer's s8 operand of grid(act(x)) — act 0 none or 1
 * exact-erf GELU; the per-column grid as qd_fake_quant_columns applies it (q_scale NULL: none, else q_zero_point too);
 * then the layer's static input scale s as qd_quantize_s8_tensor_ld applies it — into rows of ldq >= cols bytes, columns
 * past cols zeroed. The site's FP32 values are never stored. cols % 4 == 0, ldq % 4 == 0, x 16-byte aligned and q 4-byte
 * aligned (else cudaErrorInvalidValue / cudaErrorMisalignedAddress). on_grid: the grid is s itself (every column's
 * scale s, zero point 0, [qmin, qmax] within [-127, 127], s a normal float; q_scale not read): the same bytes from the
 * grid's level, one division instead of two. */
int qd_site_quantize(const float *x, int rows, int cols, int act, const float *q_scale, const float *q_zero_point, int qmin, int qmax,
                     int on_grid, float s, int8_t *q, int ldq, void *stream);

/* Per-(sequence, head) matrix pointers for cuBLAS's pointer-array batched GEMMs, batch index b*heads + h: out[j*batch*heads + i]
   is operand j's matrix i — for row_strides[j] > 0 head h of sequence b in place in a token-major operand whose rows lie
   row_strides[j] floats apart (at least heads*head_dim: a [batch*seq, heads*head_dim] buffer, or q, k or v inside a packed
   q | k | v buffer with bases[j] at its first column), else (0) matrix i of a [batch*heads, seq, seq] buffer. bases and
   row_strides are host arrays of count (at most 12) entries; out is a device array of count*batch*heads pointers. */
int qd_head_pointers(const float *const *bases, const int *row_strides, int count, int batch, int seq, int heads, int head_dim,
                     const float **out, void *stream);

/* In place over scores [batch, heads, seq, seq]: softmax along the last dim with keys whose
 * mask[b, key] == 0 excluded (probability exactly 0). */
int qd_masked_softmax(float *scores, const int *mask, int batch, int heads, int seq, void *stream);

/* Attention with the scores kept on chip (cuda/fused_attention.cuh): one block per (sequence, head), products on TF32
 * tensor cores. qkv [batch*seq, 3*heads*head_dim] with each token's q | k | v, mask [batch, seq] (keys with 0 get
 * probability exactly 0; a row whose keys are all masked gets NaN, as the CPU reference does); ctx [batch*seq,
 * heads*head_dim] = softmax(q k^T scale + mask) v per head. qkv and ctx (dctx, dqkv) 16-byte aligned.
 * qd_fused_attention_fits: 1 where the kernels take (seq, head_dim) on this device (seq <= 128, head_dim 32 or 64, the
 * shared memory within the device's limit; pass 0 the forward, 1 the TF32 backward, 2 the FP16 backward), else 0. */
int qd_fused_attention_fits(int seq, int head_dim, int pass);
int qd_fused_attention(const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim, float scale, float *ctx,
                       void *stream);
/* The backward of qd_fused_attention, recomputing the probabilities: dqkv (packed as qkv) from dctx. On TF32 tensor
 * cores with dqkv in FP32; or, where half_out (FP16 products), with FP16 operands (heads, probabilities, dS) and dqkv in
 * FP16, the next input-gradient product's operand. */
int qd_fused_attention_grad(const float *dctx, const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim,
                            float scale, void *dqkv, int half_out, void *stream);

/* out[b,:] = hidden[b,0,:] (mode 0, CLS) or the mean over tokens with mask 1 (mode 1). */
int qd_pool(const float *hidden, const int *mask, int batch, int seq, int dim, int mode, float *out, void *stream);

/* ---- simulated quantization (fake-quant), in place; CPU counterpart: CpuBackend.fakeQuant* ----
 * q = clamp(rint(x / scale) + zero_point, qmin, qmax) (rint: round half to even), x = (q - zero_point) * scale. */

/* Per column c: scale[c], zero_point[c] (per-tensor: all alike; per-embedding-group: shared in a group). */
int qd_fake_quant_columns(float *x, int rows, int cols, const float *scale, const float *zero_point, int qmin, int qmax,
                          void *stream);
/* Per row (token), range from the row itself: symmetric uses max|x| / qmax, asymmetric min/max with the
 * range widened to include 0. bits in 2..8. */
int qd_fake_quant_rows(float *x, int rows, int cols, int bits, int symmetric, void *stream);

/* ---- backward, for gradients with respect to the input (attributions); CPU counterpart: CpuGradientOps ---- */

/* dst[0..n) = src[0..n), device to device. */
int qd_copy(float *dst, const float *src, size_t n, void *stream);
/* g = GELU(u) (exact erf) over [rows, cols], keeping u for the backward; q_scale not NULL (then q_zero_point too): g
 * fake-quantized per column as qd_fake_quant_columns does. */
int qd_gelu_forward(const float *u, float *g, int rows, int cols, const float *q_scale, const float *q_zero_point, int qmin,
                    int qmax, void *stream);
/* dg *= GELU'(u) = Phi(u) + u phi(u), in place. */
int qd_gelu_grad(float *dg, const float *u, size_t n, void *stream);
/* Host transfers in float64: y = (float) x rounded to nearest even; y = (double) x. */
int qd_round_to_float(const double *x, size_t n, float *y, void *stream);
int qd_widen_to_double(const float *x, size_t n, double *y, void *stream);
/* y = FP16(x) (round to nearest even; 65520 and beyond: inf), x and y 16-byte aligned: the dy operand of an FP16
 * input-gradient product. */
int qd_to_half(const float *x, size_t n, void *y, void *stream);
/* dg16 = FP16(dg GELU'(u)): qd_gelu_grad writing FP16 for the next product, the FP32 result not stored; 16-byte aligned. */
int qd_gelu_grad_half(const float *dg, const float *u, size_t n, void *dg16, void *stream);
/* dx = d LayerNorm(x)/dx applied to dy: rstd (g - mean(g) - xhat mean(g xhat)), g = gamma dy; statistics
 * recomputed from the forward's input x, two-pass as in qd_add_layernorm (and by the same kind of kernel: for widths
 * dim % 4 == 0 up to 1024 one warp per row, every pointer 16-byte aligned and dx16 8-byte aligned, else
 * cudaErrorMisalignedAddress). dim <= 6128. dx16 not NULL: dx also in FP16 there (the next input-gradient product's
 * operand under FP16 products). */
int qd_layernorm_grad(const float *dy, const float *x, const float *gamma, float eps, int rows, int dim, float *dx, void *dx16,
                      void *stream);
/* In place over dp [rows, seq]: dS = P (dP - rowsum(dP P)), probs P [rows, seq] the softmax's output. */
int qd_softmax_grad(const float *probs, float *dp, int rows, int seq, void *stream);
/* dhidden [batch, seq, dim] from dpooled [batch, dim]: mode 0 (CLS) to token 0, mode 1 (mean) / n to real tokens. */
int qd_pool_grad(const float *dpooled, const int *mask, int batch, int seq, int dim, int mode, float *dhidden, void *stream);
/* out[b, i] = from[i] + alphas[b] diff[i], b < batch, i < n. */
int qd_interpolate(const float *from, const float *diff, const float *alphas, int batch, size_t n, float *out, void *stream);
/* out[i] = (accumulate ? out[i] : 0) + sum_b weights[b] rows[b, i]. */
int qd_weighted_row_sum(const float *rows, const float *weights, int batch, size_t n, float *out, int accumulate, void *stream);
/* The clipping-aware STE: mask[r,c] = |pre - post| > half_steps[c] ? 0 : 1 over [rows, cols]; x *= mask over n. */
int qd_clip_mask(const float *pre, const float *post, const float *half_steps, int rows, int cols, float *mask, void *stream);
int qd_multiply(float *x, const float *mask, size_t n, void *stream);


/* ---- INT8: quantize FP32 -> s8, s8 x s8 GEMM on the tensor cores (cuda/quantize.cuh, cuda/int8_gemm.cuh,
 * native/int8.cu) ----
 *
 * Quantization is symmetric: q = clamp(rint(x / s), -127, 127), x / s the correctly rounded FP32 division,
 * rint round-half-to-even (bit-identical to Java's (int) Math.rint(x / s) in float); dequantized x = q * s.
 *
 * The GEMMs compute the "TN" product C[m,n] = sum_k a[m,k] * b[n,k] with a = activations [m x k] s8 and
 * b = weights [n x k] s8, both row-major (each output channel's k values contiguous), summed exactly in s32
 * (exact for k < 131,072). Requirements: m, n, k > 0; k % 16 == 0; a and b 16-byte aligned (cudaMalloc
 * pointers are; qd_i8_repack makes any s8 matrix so). Outputs need only their element's natural alignment
 * (vector stores are used where n and the pointers allow). m, n and k need not be multiples of any tile.
 * `tile`: -1 picks a tile shape for the problem; 0..8 forces one (see qd_i8_gemm_tile_info; for tests and
 * benchmarks). Bad arguments return cudaErrorInvalidValue (1).
 *
 * Epilogues: y = act(acc * x_scale[x_per_row ? m : 0] * w_scale[w_per_col ? n : 0] + bias[n]) + residual[m,n]
 * in FP32 (act 0 none, 1 exact-erf GELU; bias [n] and residual [m x n] FP32, either may be NULL), stored as
 *   f32: float; y may be residual itself (in place);
 *   f16: IEEE binary16 (unsigned short bits), round to nearest even, overflow to +-inf;
 *   s8:  re-quantized for the next layer with a static per-tensor scale, q = clamp(rint(y / out_scale), -127, 127)
 *        (y / out_scale correctly rounded, as the quantize kernels), out_scale in [2^-64, 2^64].
 * f16 / s8 outputs must not overlap residual.
 */

/* q = clamp(rint(x / scale), -127, 127) over rows*cols elements; scale > 0. */
int qd_quantize_s8_tensor(const float *x, int rows, int cols, float scale, signed char *q, void *stream);
/* The same into rows of ldq >= cols bytes, columns cols..ldq-1 set to 0 (K padding for the GEMM). */
int qd_quantize_s8_tensor_ld(const float *x, int rows, int cols, float scale, signed char *q, int ldq, void *stream);
/* Per row r: scales[r] = max_c |x[r,c]| / 127 (1 for an all-zero row), q[r,:] quantized with it. */
int qd_quantize_s8_token(const float *x, int rows, int cols, signed char *q, float *scales, void *stream);
/* The same into rows of ldq >= cols bytes, columns cols..ldq-1 set to 0. */
int qd_quantize_s8_token_ld(const float *x, int rows, int cols, signed char *q, int ldq, float *scales, void *stream);
/* Per group of columns: group g = columns [g*cols/groups, (g+1)*cols/groups), scale scales[g] (> 0);
 * cols % groups == 0. */
int qd_quantize_s8_group(const float *x, int rows, int cols, int groups, const float *scales, signed char *q, void *stream);
/* s8 src [rows x cols] (any alignment) -> dst [rows x dst_cols]: each of the `groups` equal column groups of
 * cols/groups columns is placed at the start of a group of dst_cols/groups columns, the rest zeroed (the GEMM
 * fallback for k % 16 != 0 or misaligned operands; groups 1 for a plain GEMM). */
int qd_i8_repack(const signed char *src, int rows, int cols, int groups, signed char *dst, int dst_cols, void *stream);

/* c[m,n] = sum_k a[m,k] b[n,k] (int32). */
int qd_i8_gemm_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, int tile, void *stream);
/* The epilogues above with per-row or per-tensor activation scales. */
int qd_i8_gemm_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                   int tile, void *stream);
/* The F32 epilogue above as a pass of its own over int32 sums computed elsewhere (cuBLASLt, for comparison):
 * y = act(acc * x_scale[m or 0] * w_scale[n or 0] + bias[n]) + residual[m,n], the fused kernels' arithmetic. */
int qd_i8_dequantize_f32(const int *acc, int m, int n, const float *x_scale, int x_per_row, const float *w_scale, int w_per_col,
                         const float *bias, const float *residual, int act, float *y, void *stream);
int qd_i8_gemm_f16(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
                   int tile, void *stream);
int qd_i8_gemm_s8(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                  const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
                  signed char *q, int tile, void *stream);
/* Per-embedding-group activation scales: the k channels form `groups` contiguous groups of k/groups channels
 * ((k / groups) % 16 == 0), a[:, group g] quantized with group_scales[g]:
 * y[m,n] = act(w_scale[w_per_col ? n : 0] * sum_g group_scales[g] * acc_g[m,n] + bias[n]) + residual[m,n],
 * acc_g the s32 sum over group g's channels, folded into an FP32 sum group by group (one conversion and one
 * fma each). Tiles with PEG variants only (qd_i8_gemm_tile_info). With tile -1 on sm_90 and a group width that is a
 * multiple of 32, the wgmma kernel runs it (native/int8_wgmma.cu); the FP32 sums are the same. */
int qd_i8_gemm_peg_f32(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                       int tile, void *stream);
int qd_i8_gemm_peg_f16(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
                       int tile, void *stream);
int qd_i8_gemm_peg_s8(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                      const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
                      signed char *q, int tile, void *stream);
/* Tile shape `tile` (0..8): block rows x columns x k-bytes, warps, pipeline stages, whether the PEG GEMM has it. */
int qd_i8_gemm_tile_info(int tile, int *bm, int *bn, int *bk, int *warps, int *stages, int *peg);
/* The tile the launchers pick for an m x n x k problem on the current device: groups 0 for the plain GEMM,
 * else the PEG GEMM with that many groups. */
int qd_i8_gemm_pick_tile(int m, int n, int k, int groups, int *tile);

/* The Hopper path (cuda/int8_gemm_wgmma.cuh, native/int8_wgmma.cu): wgmma + TMA, warp-specialized, persistent.
 * Same contract as qd_i8_gemm_s32 / qd_i8_gemm_f32 (no tile argument). Returns cudaErrorNotSupported (801) on
 * devices other than sm_90 (or without the driver's tensor-map entry point), launching nothing, so a caller can
 * fall back to the mma.sync kernel. _cfg: config -1 picks, 0..2 forces one (qd_i8_gemm_wgmma_config_info);
 * max_ctas > 0 caps the persistent grid (tests), 0 = one CTA per SM. */
int qd_i8_gemm_wgmma_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, void *stream);
int qd_i8_gemm_wgmma_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale,
                         int x_per_row, const float *w_scale, int w_per_col, const float *bias, const float *residual,
                         int act, float *y, void *stream);
int qd_i8_gemm_wgmma_s32_cfg(const signed char *a, const signed char *b, int m, int n, int k, int *c, int config,
                             int max_ctas, void *stream);
int qd_i8_gemm_wgmma_f32_cfg(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale,
                             int x_per_row, const float *w_scale, int w_per_col, const float *bias,
                             const float *residual, int act, float *y, int config, int max_ctas, void *stream);
int qd_i8_gemm_wgmma_config_info(int config, int *bm, int *bn, int *bk, int *stages);
int qd_i8_gemm_wgmma_pick_config(int m, int n, int k, int *config);
/* cudaSuccess where the wgmma GEMM runs, else cudaErrorNotSupported. */
int qd_i8_gemm_wgmma_supported(void);

#ifdef __cplusplus
}
#endif
#endif
