// s8 x s8 -> s32 GEMM on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a only), with the same
// contract and fused epilogues as the mma.sync kernel in int8_gemm.cuh:
//
//   C[m,n] = sum_k A[m,k] * B[n,k]      A: activations [M x K] int8 row-major (K-major)
//                                       B: weights     [N x K] int8 row-major (K-major: a "TN" product)
//
// Structure: a persistent, warp-specialized kernel (CUTLASS's "TMA warp-specialized cooperative" design).
//   * One CTA per SM loops over BM x BN output tiles (BM = 128; BN = 256, 192 or 128, see Config); tiles
//     are walked in groups of GROUP_M row-blocks so that the CTAs running at one time share A and B panels
//     in L2.
//   * Warpgroup 0 is the producer: one thread issues the TMA copies (cp.async.bulk.tensor.2d) of each
//     K-slice (BK = 128 bytes of K) of the A tile (128 x 128 B) and the B tile (BN x 128 B) into a STAGES-deep
//     shared-memory ring. Each stage has a "full" mbarrier (TMA transaction bytes complete it) and an
//     "empty" mbarrier (the consumer warps arrive on it once their wgmmas have read the stage).
//   * Warpgroups 1 and 2 are the consumers: each owns 64 rows of the tile and issues, per K-slice, four
//     wgmma.m64nBNk32 (one per 32-byte K step) with both operands read straight from shared memory
//     through matrix descriptors. The s32 accumulators (BN / 2 registers per thread) stay in registers;
//     one wgmma group stays in flight while the next slice's group is issued.
//   * The epilogue starts from registers (same fragment layout as mma.sync's C fragment: thread (g, t) of
//     warp w holds rows 16w + g and 16w + g + 8, columns 8j + 2t and 8j + 2t + 1). The s32 output (N % 4 == 0,
//     16-byte aligned) goes through shared-memory boxes and TMA stores (OutputStager), which write in the
//     background while the next tile's wgmmas run; the float outputs are stored from registers with guards for
//     rows past M and columns past N. Meanwhile the producer already fills the ring with the next tile's slices.
//   * setmaxnreg moves registers from the producer (which needs few) to the consumers (accumulators).
//
// Shared-memory layout: each operand tile is stored as rows of 128 bytes in the TMA / wgmma "128-byte
// swizzle" layout (16-byte chunk c of row r stored at chunk c ^ (r % 8); 8-row groups 1024 bytes apart),
// which TMA writes when the tensor map says CU_TENSOR_MAP_SWIZZLE_128B and which the wgmma descriptor reads
// with layout type 1 (SWIZZLE_128B), stride byte offset 1024. Every stage starts on a 1024-byte boundary
// (the swizzle pattern repeats every 1024 bytes, so the descriptors' base offset is 0). A K step of 32 bytes
// inside the 128-byte row advances the descriptor's start address by 32 bytes; the hardware applies the
// swizzle to the final address.
//
// Ragged shapes: TMA zero-fills every element of a box outside the tensor (rows past M or N, bytes past
// K) and still counts the whole box in the transaction bytes, so the last K-slice and the edge tiles need no
// special path; the zeros add nothing to the sums and the epilogue skips rows >= M and columns >= N.
//
// Requirements (checked by the launchers in native/int8_wgmma.cu): an sm_90 device, K % 16 == 0 (TMA's
// global strides are multiples of 16 bytes), A and B 16-byte aligned; M, N, K > 0.
//
// Elsewhere (sm_80/86/89, and the plain sm_90 target) the kernel compiles to a stub that traps: the
// launchers never start it there.
#pragma once
#include <cuda.h>          // CUtensorMap and its enums (types only: the driver is reached through the runtime)
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled_v12000
#include <cuda_runtime.h>
#include <stdint.h>
#include "int8_gemm.cuh"  // Epilogue, OUT_*, ACT_*, gelu, smem_u32

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define QD_WGMMA_SM90A 1
#endif
// The s32 output leaves through shared memory and TMA stores (OutputStager); 0 sends every output to the direct
// stores (the staged kernels are still compiled, never launched: the A/B of bench/results/2026-11-23-h100-tma-store/).
#ifndef QD_WGMMA_TMA_STORE
#define QD_WGMMA_TMA_STORE 1
#endif

namespace qd {
namespace i8 {
namespace sm90 {

// A CTA tile configuration. BM is fixed by the two consumer warpgroups (m64 each). STORE_BUFS_ > 0: the s32
// output goes through that many shared-memory boxes per consumer warp and TMA stores (OutputStager).
template <int BN_, int STAGES_, int STORE_BUFS_ = 0>
struct Config {
    static constexpr int BM = 128, BN = BN_, BK = 128, STAGES = STAGES_, STORE_BUFS = STORE_BUFS_;
    static constexpr int CONSUMERS = 2;                           // consumer warpgroups, 64 rows each
    static constexpr int THREADS = 128 * (1 + CONSUMERS);         // + the producer warpgroup
    static constexpr int GROUP_M = 8;                             // row-blocks per rasterization group
    static constexpr int A_STAGE = BM * BK, B_STAGE = BN * BK;    // bytes of one stage's tiles
    static constexpr int TX_BYTES = A_STAGE + B_STAGE;            // what one stage's TMA copies deliver
    static constexpr int B_OFFSET = STAGES * A_STAGE;             // B tiles follow the A tiles
    // Then the output boxes (OutputStager): per consumer warp STORE_BUFS boxes of 16 rows x 128 bytes.
    static constexpr int STORE_BOX = 16 * 128, STORE_WARPS = 4 * CONSUMERS;
    static constexpr int STORE_OFFSET = STAGES * (A_STAGE + B_STAGE);
    static constexpr int BAR_OFFSET = STORE_OFFSET + STORE_BUFS * STORE_WARPS * STORE_BOX;  // full[], empty[]
    static constexpr int SMEM = 1024 + BAR_OFFSET + 2 * STAGES * 8;  // + slack to align the base to 1024
    static constexpr int ACC = BN / 2;                            // s32 accumulators per consumer thread
    static constexpr int PRODUCER_REGS = 40, CONSUMER_REGS = 232; // setmaxnreg targets
    static_assert(BN % 64 == 0 && BN >= 128 && BN <= 256, "BN: 128, 192 or 256 (one wgmma covers it)");
    static_assert(A_STAGE % 1024 == 0 && B_STAGE % 1024 == 0, "stages on 1024-byte swizzle boundaries");
    static_assert(SMEM <= 227 * 1024, "shared memory per CTA");
    static_assert(PRODUCER_REGS * 128 + CONSUMER_REGS * 128 * CONSUMERS <= 65536, "register file");
};

// A PEG configuration: the output type is a template argument, so that each PEG kernel holds one epilogue (with
// the type chosen at run time the compiler unswitched the epilogue three ways: a 360 KB kernel).
template <int BN_, int STAGES_, int OUT_>
struct PegConfig : Config<BN_, STAGES_> {
    static constexpr int OUT = OUT_;
};

// ---------------------------------------------------------------------------------------------------------
// PTX wrappers (sm_90a). Barriers and shared addresses are 32-bit shared-window addresses.

// mbarrier: `count` arrivals (plus any expected transaction bytes) complete a phase.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// One arrival that also announces `bytes` of transactions (the TMA copies complete them).
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// True once the phase of parity `parity` has completed (a fresh barrier counts its phase "-1", parity 1,
// as completed: that is how the producer's first pass over the empty barriers goes through).
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    return done != 0;
}
__device__ __forceinline__ uint64_t global_timer_ns() {
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}
// Wait for a barrier phase. QD_WGMMA_WATCHDOG_NS (a test build option) traps instead of hanging when one
// wait lasts longer than that many nanoseconds: a pipeline bug then fails the launch instead of the run.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    if (mbar_try_wait(bar, parity)) return;
#ifdef QD_WGMMA_WATCHDOG_NS
    const uint64_t t0 = global_timer_ns();
#endif
    while (!mbar_try_wait(bar, parity)) {
#ifdef QD_WGMMA_WATCHDOG_NS
        if (global_timer_ns() - t0 > (uint64_t)(QD_WGMMA_WATCHDOG_NS)) __trap();
#endif
    }
}

// TMA: copy the box at (x = K byte offset, y = row) of the tensor map into shared memory at `dst`; its
// bytes (the whole box, out-of-bounds elements included, which arrive as zeros) complete transactions of
// the barrier `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap *map, uint32_t bar, int x, int y) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n"
        ::"r"(dst), "l"((uint64_t)map), "r"(bar), "r"(x), "r"(y)
        : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}
// TMA store: the box at (x = column, y = row) of the tensor map from shared memory at `src`, as one bulk
// async-group of this thread once committed. Box elements outside the tensor are not written.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap *map, uint32_t src, int x, int y) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%2, %3}], [%1];\n"
                 ::"l"((uint64_t)map), "r"(src), "r"(x), "r"(y)
                 : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// At most N of this thread's bulk groups still reading their shared-memory source.
template <int N>
__device__ __forceinline__ void bulk_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
// Every bulk group of this thread complete (its writes done).
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
// Orders this thread's generic-proxy shared-memory writes before later async-proxy (TMA) reads of them.
__device__ __forceinline__ void fence_proxy_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// wgmma ordering: fence before the first wgmma that touches registers other instructions accessed;
// commit closes a group of issued wgmmas; wait<N> returns when at most N groups are still running.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins the accumulators in program order at this point: the compiler may not move their uses (the
// epilogue's reads) above a wgmma_wait, which it cannot see writes them.
template <int N>
__device__ __forceinline__ void fence_operands(int (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+r"(d[i])::"memory");
}

// Shared-memory matrix descriptor of a K-major tile in the 128-byte swizzle layout: start address and
// byte offsets in 16-byte units; the leading byte offset is unused by swizzled K-major layouts (1 by
// convention), the stride byte offset is the distance between 8-row groups (8 rows x 128 B).
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4)   // bits 0-13: start address
           | ((uint64_t)1 << 16)                // bits 16-29: leading byte offset
           | ((uint64_t)(1024 >> 4) << 32)      // bits 32-45: stride byte offset
           | ((uint64_t)1 << 62);               // bits 62-63: layout type 1 = SWIZZLE_128B
}

// Register reallocation between warpgroups (needs the kernel's __launch_bounds__(THREADS, 1) cap).
template <int REGS>
__device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
}
template <int REGS>
__device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
}

// D (+)= A * B^T over one 32-byte K step: A 64 x 32 bytes, B N x 32 bytes, both K-major in shared memory.
// `accumulate` 0 overwrites D (the first step of a tile), 1 adds to it.
template <int N>
__device__ __forceinline__ void wgmma_s8(int (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int accumulate);


// The operand lists must be spelled out, one instruction per N (generated).
template <>
__device__ __forceinline__ void wgmma_s8<128>(int (&d)[64], uint64_t desc_a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p;\n}\n"
        :
          "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_s8<192>(int (&d)[96], uint64_t desc_a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %98, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n192k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
        "}, %96, %97, p;\n}\n"
        :
          "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]),
          "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]),
          "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]),
          "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]),
          "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95])
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_s8<256>(int (&d)[128], uint64_t desc_a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p;\n}\n"
        :
          "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]),
          "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]),
          "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]),
          "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]),
          "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]),
          "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]),
          "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]),
          "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]),
          "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}


// ---------------------------------------------------------------------------------------------------------
// Scheduling helpers.

// Tile t (0 .. tiles_m * tiles_n - 1) -> (row-block mb, column-block nb). Tiles go in groups of group_m
// row-blocks, row-block fastest inside a group: the CTAs running at one time (consecutive t) read a few A
// panels and a run of B panels, which stay in L2 between them.
struct TileRaster {
    int tiles_m, tiles_n, group_m;
    __host__ __device__ __forceinline__ void coords(int t, int &mb, int &nb) const {
        const int span = group_m * tiles_n;           // tiles in one full group
        const int first = (t / span) * group_m;       // the group's first row-block
        const int rows = group_m < tiles_m - first ? group_m : tiles_m - first;  // the last group may be shorter
        const int r = t - (t / span) * span;
        mb = first + r % rows;
        nb = r / rows;
    }
};

// A position in the stage ring, kept alike by the producer and the consumers (both walk the same tiles and
// K-slices): the stage and the parity of the barrier phase that the current pass over the ring uses.
template <int STAGES>
struct RingPos {
    int stage = 0;
    uint32_t phase = 0;
    __device__ __forceinline__ void advance() {
        if (++stage == STAGES) {
            stage = 0;
            phase ^= 1;
        }
    }
};

// ---------------------------------------------------------------------------------------------------------
// Output staging for the s32 output. Stores straight from the accumulator fragments write 8 rows x 32 bytes per
// warp instruction, the whole tile at once at its end while the tensor cores wait: at 16384 x 3072 x 768 (a
// 201 MB int32 output) that ran at 0.88x cuBLASLt with DRAM at 48% of its bandwidth
// (bench/results/2026-11-23-h100-profile/). Staged, 1.10-1.11x: each consumer warp writes 32-column pieces of its
// 16 rows into a shared-memory box (16 rows x 128 bytes in the 128-byte swizzle, so that the fragment layout's
// writes hit 32 distinct banks per 128 bytes) and one lane hands the box to the TMA engine, which writes whole rows
// while the warp goes on with the next piece and the next tile's wgmmas. A warp's STORE_BUFS boxes rotate; a box is
// rewritten only after its previous store has read it. The tensor map clips rows >= M and columns >= N. The FP32
// epilogue staged the same way ran slower than its direct stores, so it is not staged
// (bench/results/2026-11-23-h100-tma-store/).
template <class C>
struct OutputStager {
    const CUtensorMap *map;
    uint32_t boxes;  // this warp's first box (1024-byte aligned: the swizzle pattern's period)
    int lane;
    // Before writing chunk `chunk`'s box: its previous store has read it (at a tile's first chunk every store
    // before, as the previous tile may have ended early at the right edge).
    __device__ __forceinline__ void acquire(int chunk) const {
        if (lane == 0) {
            if (chunk == 0) bulk_wait_read<0>();
            else bulk_wait_read<(C::STORE_BUFS > 0 ? C::STORE_BUFS - 1 : 0)>();
        }
        __syncwarp();
    }
    __device__ __forceinline__ uint32_t box(int chunk) const {
        return boxes + (C::STORE_BUFS > 1 ? chunk % C::STORE_BUFS : 0) * C::STORE_BOX;
    }
    // Thread (g = lane / 4, t = lane % 4)'s values at box row g + 8h, columns 8jj + 2t and 8jj + 2t + 1: 16-byte
    // chunk 2jj + t / 2 of the row, stored at chunk ^ (row % 8) = chunk ^ g.
    __device__ __forceinline__ void put(int chunk, int h, int jj, uint32_t v0, uint32_t v1) const {
        const int r = lane / 4 + 8 * h, c16 = 2 * jj + (lane % 4) / 2;
        const uint32_t addr = box(chunk) + r * 128 + ((c16 ^ (lane / 4)) << 4) + (lane & 1) * 8;
        asm volatile("st.shared.v2.b32 [%0], {%1, %2};\n" ::"r"(addr), "r"(v0), "r"(v1) : "memory");
    }
    // After writing it: the box goes to column x, row y of the output (x, y warp-uniform).
    __device__ __forceinline__ void release(int chunk, int x, int y) const {
        fence_proxy_async_smem();
        __syncwarp();
        if (lane == 0) {
            tma_store_2d(map, box(chunk), x, y);
            bulk_commit();
        }
    }
};
// After the CTA's last tile: every store of this warp done (the shared memory it reads must outlive the CTA).
__device__ __forceinline__ void drain_stores(int lane) {
    if (lane == 0) bulk_wait_all();
}

// ---------------------------------------------------------------------------------------------------------
// Epilogues, straight from the accumulator registers. acc[4j + 2h + e] is row row0 + 8h, column
// col0 + 8j + e (row0 = this thread's first row, col0 = its first column).

// s32 through the staging boxes: 32 columns (4 fragment blocks of 8) per box.
template <class C>
__device__ __forceinline__ void store_s32_staged(const int (&acc)[C::ACC], int M, int N, int row0, int col0,
                                                 const OutputStager<C> &stager) {
    const int x0 = col0 - 2 * (stager.lane % 4), y0 = row0 - stager.lane / 4;  // the warp's tile corner
    if (y0 >= M) return;
#pragma unroll
    for (int chunk = 0; chunk < C::BN / 32; chunk++) {
        if (x0 + 32 * chunk >= N) break;  // nothing of the box is in the output
        stager.acquire(chunk);
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
            for (int jj = 0; jj < 4; jj++) {
                const int j = 4 * chunk + jj;
                stager.put(chunk, h, jj, (uint32_t)acc[4 * j + 2 * h], (uint32_t)acc[4 * j + 2 * h + 1]);
            }
        stager.release(chunk, x0 + 32 * chunk, y0);
    }
}

template <class C>
__device__ __forceinline__ void store_s32(const int (&acc)[C::ACC], const Epilogue &ep, int M, int N, int row0,
                                          int col0) {
    const bool pairs = (N & 1) == 0;  // 8-byte stores need an even row length
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = row0 + 8 * h;
        if (row >= M) continue;
        int *crow = (int *)ep.dst + (size_t)row * N;
#pragma unroll
        for (int j = 0; j < C::BN / 8; j++) {
            const int col = col0 + 8 * j;
            if (col >= N) break;  // columns only grow with j
            const int v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
            if (pairs) {
                *reinterpret_cast<int2 *>(crow + col) = make_int2(v0, v1);
            } else {
                crow[col] = v0;
                if (col + 1 < N) crow[col + 1] = v1;
            }
        }
    }
}

// y = act(acc * sx * sw + bias) + residual (plain: s32 accumulators, FP32 output) or y = act(acc * sw + bias) +
// residual (PEG: the FP32 sum of the folded groups; FP32, FP16 or re-quantized s8 output), in the mma.sync kernel's
// order of operations. The columns go in chunks of JC 8-column blocks; the next chunk's scales, biases and
// residuals are loaded before this chunk's stores (y may be the residual buffer, so the compiler may not hoist
// loads over stores itself; each element is read and written by this thread only, reads first, so the explicit
// order is safe). Pairs of columns go as one access where N is even and (PEG: ep.pairs) the pointers allow it.
template <class C, bool PEG, int OUT, class T>
__device__ __forceinline__ void store_float(const T (&acc)[C::ACC], const Epilogue &ep, int M, int N, int row0,
                                            int col0) {
    constexpr int J = C::BN / 8, JC = 4, CHUNKS = J / JC;
    static_assert(J % JC == 0, "whole chunks");
    const bool pairs = PEG ? ep.pairs != 0 : (N & 1) == 0;  // plain: the launcher checked the alignment for even N
    float sx[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = row0 + 8 * h;
        sx[h] = PEG ? 1.f : ep.sx_per_row ? (row < M ? __ldg(ep.sx + row) : 0.f) : __ldg(ep.sx);
    }
    const float sw_all = ep.sw_per_col ? 0.f : __ldg(ep.sw);
    const float out_rcp = PEG ? 1.f / ep.out_scale : 1.f;  // OUT_S8 (as the mma.sync epilogue computes it)
    struct Chunk {
        float sw[JC][2], bias[JC][2], res[2][JC][2];
    };
    auto load = [&](Chunk &c, int chunk) {
#pragma unroll
        for (int jj = 0; jj < JC; jj++) {
            const int col = col0 + 8 * (chunk * JC + jj);
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const bool in = col + e < N;
                c.sw[jj][e] = ep.sw_per_col ? (in ? __ldg(ep.sw + col + e) : 0.f) : sw_all;
                c.bias[jj][e] = ep.bias && in ? __ldg(ep.bias + col + e) : 0.f;
            }
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int row = row0 + 8 * h;
                c.res[h][jj][0] = c.res[h][jj][1] = 0.f;
                if (ep.residual && row < M && col < N) {
                    const float *p = ep.residual + (size_t)row * N + col;
                    if (pairs) {
                        const float2 r = __ldg(reinterpret_cast<const float2 *>(p));
                        c.res[h][jj][0] = r.x;
                        c.res[h][jj][1] = r.y;
                    } else {
                        c.res[h][jj][0] = __ldg(p);
                        if (col + 1 < N) c.res[h][jj][1] = __ldg(p + 1);
                    }
                }
            }
        }
    };
    Chunk cur, next;
    load(cur, 0);
#pragma unroll
    for (int chunk = 0; chunk < CHUNKS; chunk++) {
        if (chunk + 1 < CHUNKS) load(next, chunk + 1);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row0 + 8 * h;
            if (row >= M) continue;
#pragma unroll
            for (int jj = 0; jj < JC; jj++) {
                const int j = chunk * JC + jj, col = col0 + 8 * j;
                if (col >= N) break;
                float v[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    v[e] = epilogue_value((float)acc[4 * j + 2 * h + e], sx[h], cur.sw[jj][e], cur.bias[jj][e], cur.res[h][jj][e],
                                          ep.act);  // PEG: sx[h] = 1, acc already FP32
                }
                const size_t o = (size_t)row * N + col;
                if constexpr (OUT == OUT_F32) {
                    float *y = (float *)ep.dst + o;
                    if (pairs) {
                        *reinterpret_cast<float2 *>(y) = make_float2(v[0], v[1]);
                    } else {
                        y[0] = v[0];
                        if (col + 1 < N) y[1] = v[1];
                    }
                } else if constexpr (OUT == OUT_F16) {
                    __half *y = (__half *)ep.dst + o;
                    if (pairs) {
                        *reinterpret_cast<__half2 *>(y) = __floats2half2_rn(v[0], v[1]);
                    } else {
                        y[0] = __float2half_rn(v[0]);
                        if (col + 1 < N) y[1] = __float2half_rn(v[1]);
                    }
                } else {
                    int8_t *y = (int8_t *)ep.dst + o;
                    const int8_t q0 = requantize(v[0], ep.out_scale, out_rcp), q1 = requantize(v[1], ep.out_scale, out_rcp);
                    if (pairs) {
                        *reinterpret_cast<char2 *>(y) = make_char2(q0, q1);
                    } else {
                        y[0] = q0;
                        if (col + 1 < N) y[1] = q1;
                    }
                }
            }
        }
        if (chunk + 1 < CHUNKS) cur = next;
    }
}

// ---------------------------------------------------------------------------------------------------------
// PEG (per-embedding-group activation scales; the contract and the fold are int8_gemm.cuh's): the K channels form
// G groups of gs = K / G channels, gs % 32 == 0 so that a group is whole 32-byte wgmma K steps,
//   y = act(sw[n] * sum_g sx[g] * acc_g + bias[n]) + residual,  acc_g the s32 sum over group g,
// each acc_g folded into an FP32 sum in group order, f = fma(sx[g], (float)acc_g, f): one conversion (exact,
// |acc_g| < 2^24 for gs < 1024; else rounded to nearest) and one fma per group, the mma.sync PEG's arithmetic, so
// both kernels give the same FP32 sums. The conversion is a plain cast: on sm_90a it compiles to I2FP.F32.S32, one
// instruction; this kernel's earlier exponent-trick conversions (two instructions for groups up to 256 channels, as
// the mma.sync kernel's; seven above, where the mma.sync kernel uses I2F) made it 4-15% slower
// (bench/results/2026-11-23-h100-tma-store/).
//
// A group's wgmmas accumulate in the s32 registers; after its last one the consumer waits for them all and folds
// the sums into the FP32 ones in place (DeepGEMM's "promotion"). Making the two consumer warpgroups take turns, so
// that one folds while the other's wgmmas run, measured no faster (bench/results/2026-11-23-h100-turns-ab/); nor did
// starting one a segment behind the other (bench/results/2026-11-23-h100-tma-store/). A slice (4 K steps) split by a
// group boundary is issued as two commit groups ("segments"). The FP32 sums double the accumulator registers, hence BN <= 192. Measured on the H100
// (bench/results/2026-11-23-h100-peg-wgmma/): two s32 sets alternating by group, each fold overlapping the next
// group's first wgmmas, ran 7-15% slower at BN 128 and leave no room for BN 192. Splitting the tile's columns in
// two halves with their own commit groups (m64n96 wgmmas; each half folded while the other's wgmmas run) ran 3-9%
// slower (bench/results/2026-11-23-h100-tma-store/): A is read from shared memory twice per K step.

// One consumer warpgroup's PEG main loop over a tile's K: the stage ring position, the s32 sums of the current
// group and the FP32 sums of the folded ones.
template <class C>
struct PegMainloop {
    static constexpr int STEPS = C::BK / 32;  // 32-byte K steps per slice
    uint32_t base, full_bar, empty_bar, a_offset;
    int lane, steps, spg;  // steps: K / 32, spg: steps per group
    const float *scales;
    RingPos<C::STAGES> pos;
    int pending = -1;      // a fully issued slice's stage, released once a later wait shows it read
    int acc[C::ACC];
    float facc[C::ACC];

    // One segment: the steps from st to the end of its slice or of the group (first .. last - 1), whichever
    // comes first, into acc (the group's first step overwrites), committed as one wgmma group. Returns its end.
    __device__ __forceinline__ int issue_segment(int st, int first, int last) {
        const int kk0 = st % STEPS, slice0 = st - kk0;
        if (kk0 == 0) mbar_wait(full_bar + 8 * pos.stage, pos.phase);  // a new slice: its tiles have landed
        const int kk1 = min(last - slice0, STEPS);                      // this segment: steps kk0 .. kk1 - 1
        const uint64_t desc_a = smem_desc_sw128(base + pos.stage * C::A_STAGE + a_offset);
        const uint64_t desc_b = smem_desc_sw128(base + C::B_OFFSET + pos.stage * C::B_STAGE);
        fence_operands(acc);
        // +32 bytes of K = +2 in the descriptors. A whole slice (the common case) apart: ptxas puts a
        // warpgroup.arrive before each wgmma that it cannot prove is issued. The fence: the fold or the
        // epilogue read these registers (inside the branches, or ptxas adds another one after the branch).
        if (kk0 == 0 && kk1 == STEPS) {
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < STEPS; kk++)
                wgmma_s8<C::BN>(acc, desc_a + 2 * kk, desc_b + 2 * kk, slice0 + kk > first ? 1 : 0);
        } else {
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < STEPS; kk++)
                if (kk >= kk0 && kk < kk1)
                    wgmma_s8<C::BN>(acc, desc_a + 2 * kk, desc_b + 2 * kk, slice0 + kk > first ? 1 : 0);
        }
        wgmma_commit();
        return slice0 + kk1;
    }

    // Group g: its steps, one segment in flight while the consumer waits for the one before and releases
    // stages; after the last, every wgmma of the group done, facc = fma(s_g, (float)acc, facc).
    __device__ __forceinline__ void group(int g) {
        const float s = __ldg(scales + g);
        const int first = g * spg, last = first + spg;
        for (int st = first; st < last;) {
            st = issue_segment(st, first, last);
            wgmma_wait<1>();  // the segment before this one is done
            fence_operands(acc);
            if (pending >= 0 && lane == 0) mbar_arrive(empty_bar + 8 * pending);
            pending = -1;
            if (st % STEPS == 0 || st == steps) {  // the slice is fully issued (the last one may end early)
                pending = pos.stage;
                pos.advance();
            }
        }
        // The group's last segment. One unconditional wait here: with the wait chosen per segment (0 at the group's
        // end, else 1) ptxas could not tell which ran and added a wait for all wgmmas in the loop (C7517).
        wgmma_wait<0>();
        fence_operands(acc);
        if (pending >= 0 && lane == 0) mbar_arrive(empty_bar + 8 * pending);
        pending = -1;
#pragma unroll
        for (int i = 0; i < C::ACC; i++) facc[i] = fmaf(s, __int2float_rn(acc[i]), facc[i]);
    }

    __device__ __forceinline__ void tile(int groups) {
        // acc is overwritten by each group's first step; zeroing it here only tells the compiler that the previous
        // tile's values are dead, so that they hold no registers through the epilogue (else it spills at BN 192).
#pragma unroll
        for (int i = 0; i < C::ACC; i++) facc[i] = 0.f, acc[i] = 0;
        for (int g = 0; g < groups; g++) group(g);
    }
};

// ---------------------------------------------------------------------------------------------------------
// The kernel. Launch: grid = min(tiles, SMs) CTAs (persistent), C::THREADS threads, C::SMEM bytes of dynamic
// shared memory. map_a: A as a 2-D tensor {K, M} (bytes), box {BK, BM}; map_b: B as {K, N}, box {BK, BN};
// both UINT8, 128-byte swizzle, zero fill (make_tensor_map below). map_c, where C::STORE_BUFS > 0 (s32 output only):
// the output as {N, M} 4-byte elements, box {32, 16} (make_output_map); unused otherwise.
// PEG: the PEG main loop (PegMainloop) and the float epilogue on its FP32 sums (ep.groups, ep.group_size,
// ep.sx = the group scales; gs % 32 == 0, checked by the launcher).
template <class C, bool PEG>
__global__ void __launch_bounds__(C::THREADS, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                      const __grid_constant__ CUtensorMap map_c, int M, int N, int K, Epilogue ep) {
#if defined(QD_WGMMA_SM90A)
    extern __shared__ uint8_t smem_raw[];
    // Shared memory: A stages | B stages | output boxes | full barriers | empty barriers, from a 1024-aligned base.
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t full_bar = base + C::BAR_OFFSET;      // full[s]: the stage's tiles have landed
    const uint32_t empty_bar = full_bar + C::STAGES * 8;  // empty[s]: every consumer warp is done with them
    auto a_tile = [&](int s) { return base + s * C::A_STAGE; };
    auto b_tile = [&](int s) { return base + C::B_OFFSET + s * C::B_STAGE; };

    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < C::STAGES; s++) {
            mbar_init(full_bar + 8 * s, 1);                       // the producer's arrive.expect_tx
            mbar_init(empty_bar + 8 * s, C::CONSUMERS * 4);       // one arrival per consumer warp
        }
        // Make the initialized barriers visible to the async proxy (TMA's complete_tx) before first use.
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();  // the last CTA-wide barrier: the roles below never meet again

    const TileRaster raster{(M + C::BM - 1) / C::BM, (N + C::BN - 1) / C::BN, C::GROUP_M};
    const int tiles = raster.tiles_m * raster.tiles_n;
    const int k_slices = (K + C::BK - 1) / C::BK;  // the last one may run past K: TMA zero-fills it
    const int warpgroup = threadIdx.x / 128;

    if (warpgroup == 0) {
        // ---- producer: one thread issues every TMA copy; the other three warps have nothing to do.
        setmaxnreg_dec<C::PRODUCER_REGS>();
        if (threadIdx.x == 0) {
            tma_prefetch_map(&map_a);
            tma_prefetch_map(&map_b);
            RingPos<C::STAGES> pos;
            for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
                int mb, nb;
                raster.coords(t, mb, nb);
                for (int ks = 0; ks < k_slices; ks++) {
                    mbar_wait(empty_bar + 8 * pos.stage, pos.phase ^ 1);  // consumers released the stage
                    const uint32_t full = full_bar + 8 * pos.stage;
                    mbar_arrive_expect_tx(full, C::TX_BYTES);
                    tma_load_2d(a_tile(pos.stage), &map_a, full, ks * C::BK, mb * C::BM);
                    tma_load_2d(b_tile(pos.stage), &map_b, full, ks * C::BK, nb * C::BN);
                    pos.advance();
                }
            }
        }
    } else {
        // ---- consumers: warpgroup 1 computes rows 0-63 of the tile, warpgroup 2 rows 64-127.
        setmaxnreg_inc<C::CONSUMER_REGS>();
        const int wg = warpgroup - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
        const uint32_t a_offset = wg * 64 * C::BK;  // this warpgroup's 64 rows inside an A stage
        if constexpr (PEG) {
            PegMainloop<C> ml;
            ml.base = base;
            ml.full_bar = full_bar;
            ml.empty_bar = empty_bar;
            ml.a_offset = a_offset;
            ml.lane = lane;
            ml.steps = K / 32;
            ml.spg = ep.group_size / 32;
            ml.scales = ep.sx;
            for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
                int mb, nb;
                raster.coords(t, mb, nb);
                ml.tile(ep.groups);
                const int row0 = mb * C::BM + wg * 64 + warp * 16 + lane / 4;
                const int col0 = nb * C::BN + 2 * (lane % 4);
                store_float<C, true, C::OUT>(ml.facc, ep, M, N, row0, col0);
            }
        } else {
            int acc[C::ACC];
#pragma unroll
            for (int i = 0; i < C::ACC; i++) acc[i] = 0;
            RingPos<C::STAGES> pos;
            for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
                int mb, nb;
                raster.coords(t, mb, nb);
                int prev_stage = 0;
                for (int ks = 0; ks < k_slices; ks++) {
                    mbar_wait(full_bar + 8 * pos.stage, pos.phase);
                    const uint64_t desc_a = smem_desc_sw128(a_tile(pos.stage) + a_offset);
                    const uint64_t desc_b = smem_desc_sw128(b_tile(pos.stage));
                    fence_operands(acc);
                    wgmma_fence();  // the epilogue of the previous tile read these registers
#pragma unroll
                    for (int kk = 0; kk < C::BK / 32; kk++)  // 32-byte K steps: +32 bytes = +2 in the descriptor
                        wgmma_s8<C::BN>(acc, desc_a + 2 * kk, desc_b + 2 * kk, (ks > 0 || kk > 0) ? 1 : 0);
                    wgmma_commit();
                    // Keep this slice's group in flight; the previous slice's group is done, so its stage is free.
                    wgmma_wait<1>();
                    fence_operands(acc);
                    if (ks > 0 && lane == 0) mbar_arrive(empty_bar + 8 * prev_stage);
                    prev_stage = pos.stage;
                    pos.advance();
                }
                wgmma_wait<0>();
                fence_operands(acc);
                if (lane == 0) mbar_arrive(empty_bar + 8 * prev_stage);

                const int row0 = mb * C::BM + wg * 64 + warp * 16 + lane / 4;
                const int col0 = nb * C::BN + 2 * (lane % 4);
                if constexpr (C::STORE_BUFS > 0) {
                    const OutputStager<C> stager{
                        &map_c, base + C::STORE_OFFSET + (wg * 4 + warp) * C::STORE_BUFS * C::STORE_BOX, lane};
                    store_s32_staged<C>(acc, M, N, row0, col0, stager);
                    if (t + (int)gridDim.x >= tiles) drain_stores(lane);
                } else if (ep.out == OUT_S32) {
                    store_s32<C>(acc, ep, M, N, row0, col0);
                } else {
                    store_float<C, false, OUT_F32>(acc, ep, M, N, row0, col0);
                }
            }
        }
    }
#elif defined(__CUDA_ARCH__)
    __trap();  // not an sm_90a build: the launchers never start this
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Host side: the tensor maps the kernel reads A and B through (shared by the launchers and the test harness).

// cuTensorMapEncodeTiled from the driver, through the runtime (no -lcuda); NULL if the driver lacks it.
inline PFN_cuTensorMapEncodeTiled_v12000 encode_tiled_fn() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void *p = nullptr;
        cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            p = nullptr;
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

// A row-major [rows x k] int8 matrix as a 2-D tensor {k, rows} (dimension 0 innermost; rows k bytes apart,
// k % 16 == 0), copied in boxes of {box_k, box_rows} into the 128-byte swizzle layout (box_k <= 128);
// out-of-bounds elements read as zeros (FLOAT_OOB_FILL_NONE). False if the driver refuses.
inline bool make_tensor_map(CUtensorMap *map, const void *ptr, int rows, int k, int box_rows, int box_k) {
    PFN_cuTensorMapEncodeTiled_v12000 encode = encode_tiled_fn();
    if (!encode) return false;
    cuuint64_t dims[2] = {(cuuint64_t)k, (cuuint64_t)rows};
    cuuint64_t strides[1] = {(cuuint64_t)k};  // bytes between rows (dimension 0's stride is the element)
    cuuint32_t box[2] = {(cuuint32_t)box_k, (cuuint32_t)box_rows};
    cuuint32_t elem_strides[2] = {1, 1};
    CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void *>(ptr), dims, strides, box, elem_strides,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

// A row-major [rows x n] matrix of 4-byte elements (the s32 or FP32 output) as a 2-D tensor {n, rows} for TMA
// stores of {32, 16} boxes from the 128-byte swizzle layout (OutputStager). Needs n % 4 == 0 (row pitch a multiple
// of 16 bytes) and ptr 16-byte aligned. False if the driver refuses.
inline bool make_output_map(CUtensorMap *map, void *ptr, int rows, int n) {
    PFN_cuTensorMapEncodeTiled_v12000 encode = encode_tiled_fn();
    if (!encode) return false;
    cuuint64_t dims[2] = {(cuuint64_t)n, (cuuint64_t)rows};
    cuuint64_t strides[1] = {(cuuint64_t)n * 4};
    cuuint32_t box[2] = {32, 16};
    cuuint32_t elem_strides[2] = {1, 1};
    CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, ptr, dims, strides, box, elem_strides,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

// The PEG GEMM on wgmma (native/int8_wgmma.cu), for native/int8.cu's qd_i8_gemm_peg_* and the test harness. `ep`:
// out (F32, F16 or S8), dst, sw, sw_per_col, bias, residual, act, out_scale, sx = the group scales, groups and
// group_size, as int8.cu's gemm_peg fills it. Returns cudaErrorNotSupported, launching nothing, where it does not
// apply (not an sm_90 device, group_size % 32 != 0): the caller then runs the mma.sync PEG. config -1 picks one,
// 0 .. PEG_CONFIGS - 1 forces it; max_ctas > 0 caps the persistent grid (tests), 0 = one CTA per SM.
constexpr int PEG_CONFIGS = 2;
int gemm_peg(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, int config, int max_ctas,
             cudaStream_t stream);
// The tile columns and stages of PEG config `config`, and the config gemm_peg picks for m x n on this device.
bool peg_config_info(int config, int *bn, int *stages);
int peg_pick_config(int m, int n);

}  // namespace sm90
}  // namespace i8
}  // namespace qd
