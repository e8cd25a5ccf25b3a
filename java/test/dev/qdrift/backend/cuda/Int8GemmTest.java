package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.qdrift.backend.Backend;
import dev.qdrift.model.BertWeights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.commons.math3.special.Erf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The INT8 kernels (native/int8.cu) against Java references, on fresh random inputs (never all zeros).
 *
 * <ul>
 *   <li>GEMM, int32 output: bit-identical to a Java integer reference, for M ∈ {1, 7, 64, 129, 1000} ×
 *       N ∈ {8, 33, 384, 1152} × K ∈ {32, 96, 384, 1536} plus K not a multiple of 32, with every tile
 *       shape compiled in and the automatic pick. s8 inputs span the whole range [−128, 127]. Outputs
 *       are poisoned with 0x7F7F7F7F (unreachable: |sum| ≤ 128² K) before every launch.
 *   <li>FP32 epilogues vs a float64 reference built from the exact int32 sums: per element
 *       |gpu − ref| ≤ 2⁻²⁰ (|acc·s_x·s_w| + |bias| + |residual|) — about 16 FP32 roundings of the
 *       largest term; the kernel does about 6 (int → float, two products, bias, GELU's erf ≤ 2 ulp,
 *       residual). Outputs poisoned with NaN.
 *   <li>PEG: per element |gpu − ref| ≤ (2G + 16) 2⁻²⁴ (|s_w| Σ_g |s_x[g] acc_g| + |bias| + |residual|):
 *       G folds of two roundings each on top of the epilogue's; every PEG tile, with group sizes that
 *       take the per-slice fold (gs % BK == 0, with the exponent-trick conversion for gs ≤ 256 and I2F
 *       above) and the per-k-step one (others, including group ends in the middle of an mma step), and
 *       bit-exact at the extremes of the s32 group sums (|acc_g| = 2²² and 2²³).
 *   <li>FP16 and s8 outputs: bit-identical to rounding the FP32 epilogue's output (Java's
 *       Float.floatToFloat16, and the quantize rule with the output scale) for every tile, plain and PEG,
 *       4-wide and element-wise stores; s8 against the float64 reference: exact except where y_ref / s
 *       lies within the FP32 epilogue's tolerance of a .5 boundary (counted, either neighbour accepted);
 *       exact ties of y / s round half to even.
 *   <li>Quantize kernels: bytes and per-token scales bit-identical to the Java reference
 *       (float division, {@link Math#rint} = round half to even, clamp ±127), including exact ties, also
 *       into zero-padded rows.
 *   <li>Fallbacks: K % 16 != 0, misaligned operands and PEG group sizes that are not multiples of 16
 *       (repacked, exact), misaligned / odd-width outputs (element-wise stores), and CudaBackend's int8
 *       linear with an odd K (zero-padded at preparation). The CPU-side pieces (padding rule, reasons,
 *       padded weight quantization) also run without a GPU ({@code @Tag("cpu")}).
 * </ul>
 */
class Int8GemmTest {
    static QdriftCuda cuda;
    static MemorySegment stream;
    static Int8Ops ops;
    static final int POISON_BYTE = 0x7F, POISON_INT = 0x7F7F7F7F;
    /** Quantized outputs are poisoned with -128, which the quantizer never writes. */
    static final int POISON_Q = 0x80;
    /** -Dqdrift.int8.quick=true: only products of at most 1.5 M multiply-adds (for compute-sanitizer runs). */
    static final boolean QUICK = Boolean.getBoolean("qdrift.int8.quick");

    static void assumeSize(int m, int n, int k) {
        Assumptions.assumeTrue(!QUICK || (long) m * n * k <= 1_500_000, "quick mode: large shape skipped");
    }

    @BeforeAll
    static void open() throws Throwable {
        if (!CudaBackend.available()) return; // the GPU tests skip (see needsGpu); the @Tag("cpu") ones run
        cuda = new QdriftCuda(NativeLibraries.qdrift());
        cuda.setDevice(0);
        stream = cuda.streamCreate();
        ops = new Int8Ops(cuda, stream);
        System.out.println("device: " + cuda.deviceDescription(0));
        for (int t = 0; t < ops.tiles(); t++) System.out.println("  tile " + t + ": " + ops.tileName(t) + (ops.tileInfo(t)[5] == 1 ? " (PEG too)" : ""));
    }

    @AfterAll
    static void close() throws Throwable {
        if (ops != null) ops.close();
        if (cuda != null) cuda.streamDestroy(stream);
    }

    @BeforeEach
    void needsGpu(TestInfo info) {
        if (!info.getTags().contains("cpu")) GpuTest.assumeGpu();
    }

    private final Dev dev = new Dev();

    @AfterEach
    void free() throws Throwable {
        dev.close();
    }

    /** Device allocations of one test, freed after it; host <-> device copies on the test stream. */
    static final class Dev {
        private final List<MemorySegment> blocks = new ArrayList<>();

        MemorySegment alloc(long bytes) throws Throwable {
            MemorySegment p = cuda.malloc(Math.max(bytes, 16));
            blocks.add(p);
            return p;
        }

        MemorySegment upload(byte[] a) throws Throwable {
            MemorySegment d = alloc(a.length);
            try (Arena ar = Arena.ofConfined()) {
                cuda.copyToDevice(d, ar.allocateFrom(JAVA_BYTE, a), a.length, stream);
            }
            return d;
        }

        MemorySegment upload(float[] a) throws Throwable {
            MemorySegment d = alloc(4L * a.length);
            try (Arena ar = Arena.ofConfined()) {
                cuda.copyToDevice(d, ar.allocateFrom(JAVA_FLOAT, a), 4L * a.length, stream);
            }
            return d;
        }

        MemorySegment poisoned(long bytes, int value) throws Throwable {
            MemorySegment d = alloc(bytes);
            cuda.memset(d, value, bytes, stream);
            return d;
        }

        void poison(MemorySegment d, long bytes, int value) throws Throwable {
            cuda.memset(d, value, bytes, stream);
        }

        int[] ints(MemorySegment d, int n) throws Throwable {
            try (Arena ar = Arena.ofConfined()) {
                MemorySegment h = ar.allocate(JAVA_INT, n);
                cuda.copyToHost(h, d, 4L * n, stream);
                return h.toArray(JAVA_INT);
            }
        }

        float[] floats(MemorySegment d, int n) throws Throwable {
            try (Arena ar = Arena.ofConfined()) {
                MemorySegment h = ar.allocate(JAVA_FLOAT, n);
                cuda.copyToHost(h, d, 4L * n, stream);
                return h.toArray(JAVA_FLOAT);
            }
        }

        short[] shorts(MemorySegment d, int n) throws Throwable {
            try (Arena ar = Arena.ofConfined()) {
                MemorySegment h = ar.allocate(java.lang.foreign.ValueLayout.JAVA_SHORT, n);
                cuda.copyToHost(h, d, 2L * n, stream);
                return h.toArray(java.lang.foreign.ValueLayout.JAVA_SHORT);
            }
        }

        byte[] bytes(MemorySegment d, int n) throws Throwable {
            try (Arena ar = Arena.ofConfined()) {
                MemorySegment h = ar.allocate(JAVA_BYTE, n);
                cuda.copyToHost(h, d, n, stream);
                return h.toArray(JAVA_BYTE);
            }
        }

        void close() throws Throwable {
            if (cuda == null) return;
            cuda.synchronize(stream);
            for (MemorySegment p : blocks) cuda.free(p);
            blocks.clear();
        }
    }

    // ---- references ----

    static byte[] randomS8(Random r, int n) {
        byte[] a = new byte[n];
        for (int i = 0; i < n; i++) a[i] = (byte) (r.nextInt(256) - 128);
        a[r.nextInt(n)] = (byte) (1 + r.nextInt(127)); // never all zeros
        return a;
    }

    /** c[m,n] = Σ_k a[m,k] b[n,k] over k in [k0, k1), exact in int. */
    static int[] referenceGemm(byte[] a, byte[] b, int m, int n, int k, int k0, int k1) {
        int[] c = new int[m * n];
        IntStream.range(0, m).parallel().forEach(i -> {
            for (int j = 0; j < n; j++) {
                int s = 0, ai = i * k, bj = j * k;
                for (int x = k0; x < k1; x++) s += a[ai + x] * b[bj + x];
                c[i * n + j] = s;
            }
        });
        return c;
    }

    static double gelu(double x) {
        return 0.5 * x * (1 + Erf.erf(x / Math.sqrt(2)));
    }

    static byte quantize(float x, float s) {
        double q = Math.rint(x / s); // float division, then round half to even
        return (byte) Math.max(-127, Math.min(127, q));
    }

    // ---- GEMM, int32 output ----

    static Stream<Arguments> gemmShapes() {
        List<Arguments> list = new ArrayList<>();
        for (int m : new int[] {1, 7, 64, 129, 1000})
            for (int n : new int[] {8, 33, 384, 1152})
                for (int k : new int[] {32, 96, 384, 1536}) list.add(Arguments.of(m, n, k));
        // K a multiple of 16 but not of 32 or 64 (the k-tile is 64 bytes, an mma step 32)
        list.add(Arguments.of(33, 40, 16));
        list.add(Arguments.of(130, 72, 48));
        list.add(Arguments.of(257, 130, 400));
        list.add(Arguments.of(300, 260, 784));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}x{1}x{2}")
    @MethodSource("gemmShapes")
    void gemmInt32IsExactForEveryTile(int m, int n, int k) throws Throwable {
        assumeSize(m, n, k);
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int[] want = referenceGemm(a, b, m, n, k, 0, k);
        MemorySegment da = dev.upload(a), db = dev.upload(b), dc = dev.alloc(4L * m * n);
        int tiles = ops.tiles();
        for (int t = -1; t < tiles; t++) {
            dev.poison(dc, 4L * m * n, POISON_BYTE);
            ops.gemmS32(da, db, m, n, k, dc, t);
            int[] got = dev.ints(dc, m * n);
            for (int i = 0; i < got.length; i++) {
                if (got[i] != want[i])
                    fail(String.format("tile %s, %dx%dx%d: c[%d,%d] = %d%s, want %d", t < 0 ? "auto" : ops.tileName(t), m, n, k,
                            i / n, i % n, got[i], got[i] == POISON_INT ? " (unwritten)" : "", want[i]));
            }
        }
    }

    @Test
    void badGemmArgumentsAreRejected() throws Throwable {
        MemorySegment p = dev.alloc(4096), q = dev.alloc(4096);
        MemorySegment NULL = MemorySegment.NULL;
        assertThrows(IllegalArgumentException.class, () -> ops.gemmS32(p, p, 0, 4, 16, p, Int8Ops.AUTO_TILE));
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(p, false, p, false, null, null, false);
        var ex = assertThrows(IllegalArgumentException.class, () -> ops.gemmS8(p, p, 4, 4, 16, e, 0f, q, Int8Ops.AUTO_TILE));
        assertTrue(ex.getMessage().contains("output scale"), ex.getMessage());
        Int8Ops.Epilogue withRes = new Int8Ops.Epilogue(p, false, p, false, null, q, false);
        ex = assertThrows(IllegalArgumentException.class, () -> ops.gemmF16(p, p, 4, 4, 16, withRes, q, Int8Ops.AUTO_TILE));
        assertTrue(ex.getMessage().contains("overlaps"), ex.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ops.gemmPegF32(p, p, 4, 4, 96, 5, p, e, q, Int8Ops.AUTO_TILE));
        // The native launchers check too: K % 16, misaligned operand, PEG group size, an unknown tile, a tile
        // without a PEG variant, the s8 output scale, f16 / s8 outputs overlapping the residual.
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(p, p, 4, 4, 24, p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(MemorySegment.ofAddress(p.address() + 4), p, 4, 4, 16, p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(p, p, 4, 4, 16, p, 99, stream));
        assertEquals(1, (int) cuda.i8GemmPegF32.invokeExact(p, p, 4, 4, 96, 4, p, p, 0, NULL, NULL, 0, p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmPegF32.invokeExact(p, p, 4, 4, 64, 2, p, p, 0, NULL, NULL, 0, p, 1, stream));
        assertEquals(1, (int) cuda.i8GemmS8.invokeExact(p, p, 4, 4, 16, p, 0, p, 0, NULL, NULL, 0, 0f, q, -1, stream));
        assertEquals(1, (int) cuda.i8GemmS8.invokeExact(p, p, 4, 4, 16, p, 0, p, 0, NULL, NULL, 0, 0x1p70f, q, -1, stream));
        assertEquals(1, (int) cuda.i8GemmF16.invokeExact(p, p, 4, 4, 16, p, 0, p, 0, NULL, q, 0, q, -1, stream));
        assertEquals(1, (int) cuda.i8GemmPegS8.invokeExact(p, p, 4, 4, 64, 2, p, p, 0, NULL, q, 0, 1f, q, -1, stream));
        cuda.synchronize(stream);
    }

    // ---- FP32 epilogues ----

    /** Random s8 operands, their exact int32 product, and the float epilogue's inputs (scales near real ones, bias, residual). */
    record EpilogueInputs(int m, int n, int k, byte[] a, byte[] b, int[] acc, float[] sx, float[] sw, float[] bias, float[] res) {
        static EpilogueInputs random(Random r, int m, int n, int k) {
            byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
            float[] sx = new float[m], sw = new float[n], bias = GpuTest.random(r, n, 2f), res = GpuTest.random(r, m * n, 3f);
            for (int i = 0; i < m; i++) sx[i] = (float) (0.5 + r.nextDouble()) * 0.02f;
            for (int j = 0; j < n; j++) sw[j] = (float) (0.5 + r.nextDouble()) * 0.003f;
            return new EpilogueInputs(m, n, k, a, b, referenceGemm(a, b, m, n, k, 0, k), sx, sw, bias, res);
        }

        /** Option combination `mask` (bits: per-row x scale, per-column w scale, bias, GELU, residual) on the device buffers. */
        Int8Ops.Epilogue epilogue(int mask, MemorySegment dsx, MemorySegment dsw, MemorySegment dbias, MemorySegment dres) {
            return new Int8Ops.Epilogue(dsx, (mask & 1) != 0, dsw, (mask & 2) != 0, (mask & 4) != 0 ? dbias : null,
                    (mask & 16) != 0 ? dres : null, (mask & 8) != 0);
        }

        /**
         * Fails unless y (all m × n outputs of option combination `mask`) is within 2^-20 of the float64 reference's
         * magnitude (FP32 products and sums: a few ulps). Returns the worst error as a fraction of the tolerance.
         */
        double check(float[] y, int mask, String what) {
            boolean xRow = (mask & 1) != 0, wCol = (mask & 2) != 0, hasBias = (mask & 4) != 0, gelu = (mask & 8) != 0, hasRes = (mask & 16) != 0;
            double worst = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    int idx = i * n + j;
                    double pre = acc[idx] * (double) sx[xRow ? i : 0] * sw[wCol ? j : 0];
                    double bb = hasBias ? bias[j] : 0, rr = hasRes ? res[idx] : 0;
                    double want = (gelu ? gelu(pre + bb) : pre + bb) + rr;
                    double tol = 0x1p-20 * (Math.abs(pre) + Math.abs(bb) + Math.abs(rr)) + 1e-30;
                    double err = Math.abs(y[idx] - want);
                    if (!(err <= tol))
                        fail(String.format("%s %dx%dx%d xRow=%b wCol=%b bias=%b gelu=%b res=%b: y[%d,%d] = %s, want %s (tol %.3g)", what, m,
                                n, k, xRow, wCol, hasBias, gelu, hasRes, i, j, y[idx], want, tol));
                    worst = Math.max(worst, err / tol);
                }
            return worst;
        }
    }

    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"1,384,384", "7,33,96", "129,384,384", "64,1152,384", "1000,1152,1536", "257,130,400"})
    void gemmFp32EpiloguesMatchAFloat64Reference(int m, int n, int k) throws Throwable {
        assumeSize(m, n, k);
        EpilogueInputs in = EpilogueInputs.random(GpuTest.freshRandom(), m, n, k);
        MemorySegment da = dev.upload(in.a()), db = dev.upload(in.b()), dsx = dev.upload(in.sx()), dsw = dev.upload(in.sw()),
                dbias = dev.upload(in.bias()), dres = dev.upload(in.res()), dy = dev.alloc(4L * m * n);
        int combos = 0;
        for (int mask = 0; mask < 32; mask++) {
            // every tile once with everything on, the automatic pick for every combination
            int[] tiles = mask == 31 ? IntStream.range(-1, ops.tiles()).toArray() : new int[] {Int8Ops.AUTO_TILE};
            for (int t : tiles) {
                dev.poison(dy, 4L * m * n, 0xFF);
                ops.gemmF32(da, db, m, n, k, in.epilogue(mask, dsx, dsw, dbias, dres), dy, t);
                double worst = in.check(dev.floats(dy, m * n), mask, "tile " + t);
                combos++;
                if (mask == 31 && t == -1)
                    System.out.printf("  f32 epilogue %dx%dx%d all options: worst error %.3f of tolerance%n", m, n, k, worst);
            }
        }
        assertEquals(32 + ops.tiles(), combos);
        // In place: y is the residual buffer (the residual stream of an encoder layer).
        MemorySegment inPlace = dev.upload(in.res());
        ops.gemmF32(da, db, m, n, k, in.epilogue(23, dsx, dsw, dbias, inPlace), inPlace, Int8Ops.AUTO_TILE);
        in.check(dev.floats(inPlace, m * n), 23, "in place");
    }

    // ---- cuBLASLt (the comparison path) ----

    /** cuBLASLt's s8 GEMM behind the CUBLASLT tile: exact int32 on ragged shapes; K % 16 != 0 runs our kernel instead (logged). */
    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"1,384,384", "7,33,96", "129,77,384", "1000,1152,1536", "257,130,400", "33,40,24"})
    void cublasLtInt32IsExact(int m, int n, int k) throws Throwable {
        assumeSize(m, n, k);
        openCublasLt();
        long runs = ops.cublasLtRuns();
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int[] want = referenceGemm(a, b, m, n, k, 0, k);
        MemorySegment da = dev.upload(a), db = dev.upload(b), dc = dev.poisoned(4L * m * n, POISON_BYTE);
        ops.gemmS32(da, db, m, n, k, dc, Int8Ops.CUBLASLT);
        assertEquals(k % 16 == 0 ? runs + 1 : runs, ops.cublasLtRuns(), "ran on cuBLASLt (K % 16 == 0) or fell back to ours");
        int[] got = dev.ints(dc, m * n);
        for (int i = 0; i < got.length; i++)
            if (got[i] != want[i])
                fail(String.format("cuBLASLt %dx%dx%d: c[%d,%d] = %d%s, want %d", m, n, k, i / n, i % n, got[i],
                        got[i] == POISON_INT ? " (unwritten)" : "", want[i]));
    }

    /**
     * cuBLASLt + the dequantize pass against a float64 reference (the fused epilogues' tolerance, every option on and
     * off, and in place) and against our fused FP32 epilogue (AUTO_TILE): exact int32 sums and the same epilogue_value
     * (each operation rounded on its own), so bit-identical.
     */
    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"7,33,96", "129,384,384", "1000,1152,1536"})
    void dequantizePassMatchesTheFusedEpilogue(int m, int n, int k) throws Throwable {
        assumeSize(m, n, k);
        openCublasLt();
        EpilogueInputs in = EpilogueInputs.random(GpuTest.freshRandom(), m, n, k);
        MemorySegment da = dev.upload(in.a()), db = dev.upload(in.b()), dsx = dev.upload(in.sx()), dsw = dev.upload(in.sw()),
                dbias = dev.upload(in.bias()), dres = dev.upload(in.res()), dacc = dev.poisoned(4L * m * n, POISON_BYTE),
                fused = dev.alloc(4L * m * n), pass = dev.alloc(4L * m * n);
        ops.gemmS32(da, db, m, n, k, dacc, Int8Ops.CUBLASLT);
        long identical = 0, total = 0;
        for (int mask = 0; mask < 32; mask++) {
            Int8Ops.Epilogue e = in.epilogue(mask, dsx, dsw, dbias, dres);
            dev.poison(fused, 4L * m * n, 0xFF);
            dev.poison(pass, 4L * m * n, 0xFF);
            ops.gemmF32(da, db, m, n, k, e, fused, Int8Ops.AUTO_TILE);
            ops.dequantizeF32(dacc, m, n, e, pass);
            float[] yf = dev.floats(fused, m * n), yp = dev.floats(pass, m * n);
            in.check(yp, mask, "dequantize pass");
            for (int i = 0; i < yp.length; i++) if (Float.floatToRawIntBits(yp[i]) == Float.floatToRawIntBits(yf[i])) identical++;
            total += yp.length;
        }
        System.out.printf("  dequantize pass vs fused epilogue %dx%dx%d: %d of %d outputs bit-identical%n", m, n, k, identical, total);
        assertEquals(total, identical, "dequantize pass vs fused epilogue: outputs not bit-identical");
        MemorySegment inPlace = dev.upload(in.res());
        ops.dequantizeF32(dacc, m, n, in.epilogue(23, dsx, dsw, dbias, inPlace), inPlace);
        in.check(dev.floats(inPlace, m * n), 23, "dequantize pass in place");
    }

    /** cuBLASLt comes with the CUDA 13 toolkit's cuBLAS; where it is missing the cuBLASLt tests skip, saying so. */
    private static void openCublasLt() {
        try {
            ops.openCublasLt();
        } catch (dev.qdrift.QdriftException e) {
            Assumptions.abort(e.getMessage());
        }
    }

    @Test
    void cublasLtMisuseIsRefused() throws Throwable {
        MemorySegment p = dev.alloc(4096), q = dev.alloc(4096);
        Int8Ops fresh = new Int8Ops(cuda, stream);
        var ex = assertThrows(IllegalStateException.class, () -> fresh.gemmS32(p, p, 4, 4, 16, q, Int8Ops.CUBLASLT));
        assertTrue(ex.getMessage().contains("openCublasLt"), ex.getMessage());
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(p, false, p, false, null, null, false);
        var ex2 = assertThrows(IllegalArgumentException.class, () -> ops.gemmF32(p, p, 4, 4, 16, e, q, Int8Ops.CUBLASLT));
        assertTrue(ex2.getMessage().contains("int32"), ex2.getMessage());
        var nullAcc = assertThrows(IllegalArgumentException.class, () -> ops.dequantizeF32(MemorySegment.NULL, 4, 4, e, q));
        assertTrue(nullAcc.getMessage().contains("acc is NULL"), nullAcc.getMessage());
        MemorySegment shifted = MemorySegment.ofAddress(q.address() + 16);
        var ex3 = assertThrows(IllegalArgumentException.class, () -> ops.dequantizeF32(q, 4, 4, e, shifted));
        assertTrue(ex3.getMessage().contains("overlaps acc"), ex3.getMessage());
        var peg = assertThrows(IllegalArgumentException.class, () -> ops.gemmPegF32(p, p, 4, 4, 64, 2, p, e, q, Int8Ops.CUBLASLT));
        assertTrue(peg.getMessage().contains("no per-group activation scales"), peg.getMessage());
        assertEquals(1, (int) cuda.i8DequantizeF32.invokeExact(q, 4, 4, p, 0, p, 0, MemorySegment.NULL, MemorySegment.NULL, 0, shifted,
                stream));
        assertEquals(1, (int) cuda.i8DequantizeF32.invokeExact(p, 0, 4, p, 0, p, 0, MemorySegment.NULL, MemorySegment.NULL, 0, q, stream));
        fresh.close();
    }

    // ---- PEG ----

    // Group sizes: multiples of 128 (the per-slice fold on every PEG tile: 128, 256 = the exponent trick's limit,
    // 512 / 768 = I2F), of 64 but not 128 (per slice on the 64-byte k-tiles, per k-step on tile 8), of 32 or 16
    // only (per k-step; 48 and 80 end groups in the middle of an mma step); ragged M and N.
    @ParameterizedTest(name = "{0}x{1}x{2} G={3}")
    @CsvSource({"129,384,384,1", "129,384,384,3", "129,384,384,8", "129,384,384,24", "7,33,96,2", "7,33,96,6", "64,8,32,2",
            "1000,1152,1536,12", "257,130,400,5", "33,768,768,6", "129,384,768,4", "77,130,768,6", "200,72,3072,4",
            "33,100,3072,6", "65,200,576,3", "130,33,96,3", "7,40,144,3", "1,8,1536,1", "257,130,1024,4", "300,260,768,1",
            "31,136,240,3"})
    void pegGemmMatchesAFloat64Reference(int m, int n, int k, int groups) throws Throwable {
        assumeSize(m, n, k);
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int gs = k / groups;
        int[][] accG = new int[groups][];
        for (int g = 0; g < groups; g++) accG[g] = referenceGemm(a, b, m, n, k, g * gs, (g + 1) * gs);
        float[] gsx = new float[groups], sw = new float[n], bias = GpuTest.random(r, n, 2f), res = GpuTest.random(r, m * n, 3f);
        for (int g = 0; g < groups; g++) gsx[g] = (float) Math.exp(r.nextGaussian() * 2) * 0.01f; // scales spread over ~e^±4
        for (int j = 0; j < n; j++) sw[j] = (float) (0.5 + r.nextDouble()) * 0.003f;
        MemorySegment da = dev.upload(a), db = dev.upload(b), dgs = dev.upload(gsx), dsw = dev.upload(sw), dbias = dev.upload(bias),
                dres = dev.upload(res), dy = dev.alloc(4L * m * n);
        List<Integer> pegTiles = new ArrayList<>(List.of(Int8Ops.AUTO_TILE));
        for (int t = 0; t < ops.tiles(); t++) if (ops.tileInfo(t)[5] == 1) pegTiles.add(t);
        for (int mask = 0; mask < 8; mask++) {
            boolean wCol = (mask & 1) != 0, gelu = (mask & 2) != 0, extras = (mask & 4) != 0;
            Int8Ops.Epilogue e = new Int8Ops.Epilogue(MemorySegment.NULL, false, dsw, wCol, extras ? dbias : null, extras ? dres : null, gelu);
            for (int t : mask == 7 ? pegTiles : List.of(Int8Ops.AUTO_TILE)) {
                dev.poison(dy, 4L * m * n, 0xFF);
                ops.gemmPegF32(da, db, m, n, k, groups, dgs, e, dy, t);
                float[] y = dev.floats(dy, m * n);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        int idx = i * n + j;
                        double s = 0, mag = 0, w = sw[wCol ? j : 0];
                        for (int g = 0; g < groups; g++) {
                            s += (double) gsx[g] * accG[g][idx];
                            mag += Math.abs((double) gsx[g] * accG[g][idx]);
                        }
                        double pre = s * w, bb = extras ? bias[j] : 0, rr = extras ? res[idx] : 0;
                        double want = (gelu ? gelu(pre + bb) : pre + bb) + rr;
                        double tol = (2 * groups + 16) * 0x1p-24 * (mag * Math.abs(w) + Math.abs(bb) + Math.abs(rr)) + 1e-30;
                        if (!(Math.abs(y[idx] - want) <= tol))
                            fail(String.format("PEG %dx%dx%d G=%d tile %d wCol=%b gelu=%b extras=%b: y[%d,%d] = %s, want %s (tol %.3g)",
                                    m, n, k, groups, t, wCol, gelu, extras, i, j, y[idx], want, tol));
                    }
            }
        }
    }

    /** a = b = v everywhere in a group: |acc_g| = gs · v², at 2²² (gs 256, the exponent trick's limit) and 2²³ (gs 512, I2F). */
    @ParameterizedTest(name = "K={0} G={1}")
    @CsvSource({"512,2", "1024,2", "1536,6", "768,3"})
    void pegFoldIsExactAtTheExtremesOfTheGroupSums(int k, int groups) throws Throwable {
        int m = 130, n = 72, gs = k / groups;
        assumeSize(m, n, k);
        Random r = GpuTest.freshRandom();
        byte[] a = new byte[m * k], b = new byte[n * k];
        for (int i = 0; i < m; i++)
            for (int c = 0; c < k; c++) a[i * k + c] = (byte) (((i + c / gs) & 1) == 0 ? -128 : 127);
        for (int j = 0; j < n; j++)
            for (int c = 0; c < k; c++) b[j * k + c] = (byte) ((j & 1) == 0 ? -128 : 127);
        float[] gsx = new float[groups], sw = new float[n];
        for (int g = 0; g < groups; g++) gsx[g] = (float) Math.scalb(1.0, -8 - r.nextInt(4)); // powers of 2: the sums are exact
        for (int j = 0; j < n; j++) sw[j] = (float) Math.scalb(1.0, -6 - r.nextInt(3));
        MemorySegment da = dev.upload(a), db = dev.upload(b), dgs = dev.upload(gsx), dsw = dev.upload(sw), dy = dev.alloc(4L * m * n);
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(MemorySegment.NULL, false, dsw, true, null, null, false);
        for (int t = -1; t < ops.tiles(); t++) {
            if (t >= 0 && ops.tileInfo(t)[5] != 1) continue;
            dev.poison(dy, 4L * m * n, 0xFF);
            ops.gemmPegF32(da, db, m, n, k, groups, dgs, e, dy, t);
            float[] y = dev.floats(dy, m * n);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double want = 0;
                    for (int g = 0; g < groups; g++) {
                        long acc = (long) gs * a[i * k + g * gs] * b[j * k];
                        assertTrue(Math.abs(acc) <= 1L << 23);
                        want += (double) gsx[g] * acc;
                    }
                    want *= sw[j];
                    if (y[i * n + j] != want)
                        fail(String.format("PEG extremes K=%d G=%d tile %d: y[%d,%d] = %s, want %s", k, groups, t, i, j, y[i * n + j], want));
                }
        }
    }

    // ---- FP16 and s8 outputs ----

    /** Float64 reference of the float epilogues (PEG when gsx != null), with the FP32 tolerance the tests above use. */
    record FloatRef(double[] y, double[] tol) {}

    static FloatRef floatReference(byte[] a, byte[] b, int m, int n, int k, float[] sx, boolean xRow, float[] gsx, float[] sw,
                                   float[] bias, float[] res, boolean gelu) {
        int groups = gsx == null ? 1 : gsx.length, gs = k / groups;
        int[][] acc = new int[groups][];
        for (int g = 0; g < groups; g++) acc[g] = referenceGemm(a, b, m, n, k, g * gs, (g + 1) * gs);
        double[] y = new double[m * n], tol = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                int idx = i * n + j;
                double pre = 0, mag = 0;
                for (int g = 0; g < groups; g++) {
                    double term = (gsx == null ? sx[xRow ? i : 0] : gsx[g]) * (double) acc[g][idx] * sw[j];
                    pre += term;
                    mag += Math.abs(term);
                }
                double bb = bias == null ? 0 : bias[j], rr = res == null ? 0 : res[idx];
                y[idx] = (gelu ? gelu(pre + bb) : pre + bb) + rr;
                tol[idx] = (gsx == null ? 0x1p-20 : (2 * groups + 16) * 0x1p-24) * (mag + Math.abs(bb) + Math.abs(rr)) + 1e-30;
            }
        return new FloatRef(y, tol);
    }

    /**
     * For every tile (plain, then PEG), FP32, FP16 and s8 outputs of the same epilogue (scales, bias, GELU,
     * residual): FP16 == Float.floatToFloat16(FP32) and s8 == clamp(rint(FP32 / s)) bit for bit (for the plain GEMM's
     * AUTO_TILE, whose outputs may come from two kernels, FP16 within half an FP16 ulp of the float64 reference); FP32 within
     * tolerance of the float64 reference; s8 against that reference exact outside the ambiguity window.
     * N % 4 == 0 takes the 4-wide stores, other N the element-wise ones.
     */
    @ParameterizedTest(name = "{0}x{1}x{2} G={3}")
    @CsvSource({"129,384,384,0", "7,33,96,0", "257,130,400,0", "64,1152,768,0", "129,384,768,4", "77,130,768,6", "33,100,768,3",
            "31,136,240,3", "200,72,3072,4"})
    void f16AndS8OutputsAreTheRoundedFp32Output(int m, int n, int k, int groups) throws Throwable {
        assumeSize(m, n, k);
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        float[] sx = new float[m], sw = new float[n], bias = GpuTest.random(r, n, 2f), res = GpuTest.random(r, m * n, 3f);
        float[] gsx = groups > 0 ? new float[groups] : null;
        for (int i = 0; i < m; i++) sx[i] = (float) (0.5 + r.nextDouble()) * 0.02f;
        for (int j = 0; j < n; j++) sw[j] = (float) (0.5 + r.nextDouble()) * 0.003f;
        if (gsx != null) for (int g = 0; g < groups; g++) gsx[g] = (float) Math.exp(r.nextGaussian()) * 0.02f;
        FloatRef ref = floatReference(a, b, m, n, k, sx, true, gsx, sw, bias, res, true);
        double maxAbs = 0;
        for (double v : ref.y()) maxAbs = Math.max(maxAbs, Math.abs(v));
        float outScale = (float) (maxAbs / 150); // the largest outputs clamp
        MemorySegment da = dev.upload(a), db = dev.upload(b), dsx = dev.upload(gsx != null ? gsx : sx), dsw = dev.upload(sw),
                dbias = dev.upload(bias), dres = dev.upload(res), dy = dev.alloc(4L * m * n), dh = dev.alloc(2L * m * n),
                dq = dev.alloc((long) m * n);
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(dsx, true, dsw, true, dbias, dres, true);
        List<Integer> tiles = new ArrayList<>(List.of(Int8Ops.AUTO_TILE));
        for (int t = 0; t < ops.tiles(); t++) if (groups == 0 || ops.tileInfo(t)[5] == 1) tiles.add(t);
        int ambiguous = 0, clamped = 0;
        for (int t : tiles) {
            dev.poison(dy, 4L * m * n, 0xFF);
            dev.poison(dh, 2L * m * n, 0xFF); // a NaN half
            dev.poison(dq, (long) m * n, POISON_Q);
            for (Int8Ops.Output out : Int8Ops.Output.values()) {
                MemorySegment d = switch (out) { case F32 -> dy; case F16 -> dh; case S8 -> dq; };
                if (groups > 0) ops.gemmPeg(da, db, m, n, k, groups, dsx, e, out, outScale, d, t);
                else ops.gemmFloat(da, db, m, n, k, e, out, outScale, d, t);
            }
            float[] y = dev.floats(dy, m * n);
            short[] h = dev.shorts(dh, m * n);
            byte[] q = dev.bytes(dq, m * n);
            String where = String.format("%dx%dx%d G=%d tile %s", m, n, k, groups, t < 0 ? "auto" : ops.tileName(t));
            for (int idx = 0; idx < m * n; idx++) {
                if (!(Math.abs(y[idx] - ref.y()[idx]) <= ref.tol()[idx]))
                    fail(where + ": f32 y[" + idx + "] = " + y[idx] + ", want " + ref.y()[idx] + " (tol " + ref.tol()[idx] + ")");
                // The plain GEMM's AUTO_TILE on Hopper writes FP32 with the wgmma kernel and FP16 / s8 with mma.sync:
                // their FP32 values may differ in the last bit (contraction order), so there FP16 is held to the
                // float64 reference (half an FP16 ulp plus the FP32 tolerance). One kernel writes all three outputs
                // of every other case (the PEG's AUTO included), so bit equality holds there.
                if (t == Int8Ops.AUTO_TILE && groups == 0) {
                    double err = Math.abs(Float.float16ToFloat(h[idx]) - ref.y()[idx]);
                    short near = Float.floatToFloat16((float) ref.y()[idx]);
                    double halfUlp = Math.abs(Float.float16ToFloat((short) (near + 1)) - Float.float16ToFloat(near)) / 2;
                    if (!(err <= halfUlp + ref.tol()[idx] * 2))
                        fail(where + ": f16 y[" + idx + "] = " + Float.float16ToFloat(h[idx]) + ", float64 reference " + ref.y()[idx]);
                } else if (h[idx] != Float.floatToFloat16(y[idx]))
                    fail(where + ": f16 y[" + idx + "] = " + Float.float16ToFloat(h[idx]) + ", want rn(" + y[idx] + ") = "
                            + Float.float16ToFloat(Float.floatToFloat16(y[idx])));
                if (!(t == Int8Ops.AUTO_TILE && groups == 0) && q[idx] != quantize(y[idx], outScale))
                    fail(where + ": s8 q[" + idx + "] = " + q[idx] + ", want rint(" + y[idx] + " / " + outScale + ") = "
                            + quantize(y[idx], outScale));
                // Against the float64 reference: y_ref / s rounds to the same integer unless a .5 boundary lies
                // within the FP32 result's tolerance (then either neighbour is right).
                double lo = (ref.y()[idx] - ref.tol()[idx]) / outScale, hi = (ref.y()[idx] + ref.tol()[idx]) / outScale;
                lo -= Math.abs(lo) * 0x1p-22; // and the rounding of the FP32 division
                hi += Math.abs(hi) * 0x1p-22;
                long qlo = Math.max(-127, Math.min(127, (long) Math.rint(lo))), qhi = Math.max(-127, Math.min(127, (long) Math.rint(hi)));
                if (qlo != qhi) ambiguous++;
                if (q[idx] < qlo || q[idx] > qhi)
                    fail(where + ": s8 q[" + idx + "] = " + q[idx] + ", float64 reference " + ref.y()[idx] / outScale + " gives " + qlo
                            + (qlo != qhi ? ".." + qhi : ""));
                if (Math.abs(q[idx]) == 127) clamped++;
            }
        }
        System.out.printf("  f16 / s8 outputs %dx%dx%d G=%d, %d tiles: exact (the plain GEMM's AUTO: FP16 within half an ulp of float64); "
                + "s8 vs float64: %d of %d within rounding of a .5 boundary, %d clamped%n",
                m, n, k, groups, tiles.size(), ambiguous, tiles.size() * m * n, clamped);
        assertTrue(clamped > 0, "the output scale should clamp some outputs");
    }

    /** Sums small enough to be exact in FP32 and a power-of-2 output scale: y / s has exact ties, rounded half to even. */
    @Test
    void s8OutputRoundsExactTiesHalfToEven() throws Throwable {
        int m = 67, n = 36, k = 32;
        Random r = GpuTest.freshRandom();
        byte[] a = new byte[m * k], b = new byte[n * k];
        for (int i = 0; i < a.length; i++) a[i] = (byte) (r.nextInt(7) - 3);
        for (int i = 0; i < b.length; i++) b[i] = (byte) (r.nextInt(7) - 3);
        int[] acc = referenceGemm(a, b, m, n, k, 0, k);
        float[] one = {1f}, bias = new float[n];
        for (int j = 0; j < n; j++) bias[j] = (r.nextInt(9) - 4) * 0.5f;
        MemorySegment da = dev.upload(a), db = dev.upload(b), d1 = dev.upload(one), dbias = dev.upload(bias), dq = dev.alloc((long) m * n);
        for (float s : new float[] {2f, 1f, 0.5f}) {
            int ties = 0;
            for (int t = -1; t < ops.tiles(); t++) {
                dev.poison(dq, (long) m * n, POISON_Q);
                ops.gemmS8(da, db, m, n, k, new Int8Ops.Epilogue(d1, false, d1, false, dbias, null, false), s, dq, t);
                byte[] q = dev.bytes(dq, m * n);
                for (int idx = 0; idx < m * n; idx++) {
                    float y = acc[idx] + bias[idx % n]; // exact
                    if (Math.abs(y / s - Math.rint(y / s)) == 0.5) ties++;
                    assertEquals(quantize(y, s), q[idx], "tile " + t + " s=" + s + ": rint(" + y + " / " + s + ")");
                }
            }
            assertTrue(s > 1 ? ties > 0 : true);
        }
    }

    // ---- fallbacks: what the s8 kernels cannot read directly ----

    @Test
    @Tag("cpu")
    void fallbackRulesWithoutAGpu() {
        assertEquals(16, Int8Ops.paddedK(1));
        assertEquals(48, Int8Ops.paddedK(40));
        assertEquals(768, Int8Ops.paddedK(768));
        assertNull(Int8Ops.s8Unsupported(768, 0, 256, 4096));
        assertNull(Int8Ops.s8Unsupported(768, 6, 0, 16));
        assertTrue(Int8Ops.s8Unsupported(40, 0, 0, 0).contains("K = 40 is not a multiple of 16"));
        assertTrue(Int8Ops.s8Unsupported(120, 3, 0, 0).contains("group size 120/3 = 40"));
        assertTrue(Int8Ops.s8Unsupported(64, 1, 8, 0).contains("operand a is not 16-byte aligned"));
        assertTrue(Int8Ops.s8Unsupported(64, 1, 0, 4).contains("operand b"));
        // Weights quantized into padded rows: the same bytes as unpadded, zeros after.
        Random r = new Random(7);
        int out = 5, in = 40;
        float[] w = GpuTest.random(r, out * in, 0.1f), s1 = new float[out], s2 = new float[out];
        byte[] plain = CudaBackend.quantizeWeightsS8(w, out, in, in, s1), padded = CudaBackend.quantizeWeightsS8(w, out, in, 48, s2);
        assertArrayEquals(s1, s2);
        for (int o = 0; o < out; o++)
            for (int c = 0; c < 48; c++) assertEquals(c < in ? plain[o * in + c] : 0, padded[o * 48 + c], "row " + o + " col " + c);
    }

    /** K % 16 != 0 and misaligned operands: repacked into padded, aligned rows, exact; PEG groups padded one by one. */
    @ParameterizedTest(name = "{0}x{1}x{2} offsets {3},{4}")
    @CsvSource({"33,17,24,0,0", "130,72,40,0,0", "7,40,100,0,0", "64,64,64,3,0", "65,33,96,0,5", "129,130,200,7,9", "1,1,1,1,1"})
    void unsupportedOperandsTakeTheRepackingFallback(int m, int n, int k, int aOff, int bOff) throws Throwable {
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int[] want = referenceGemm(a, b, m, n, k, 0, k);
        byte[] aPad = new byte[m * k + aOff], bPad = new byte[n * k + bOff];
        System.arraycopy(a, 0, aPad, aOff, a.length);
        System.arraycopy(b, 0, bPad, bOff, b.length);
        MemorySegment dA = dev.upload(aPad), dB = dev.upload(bPad), dc = dev.alloc(4L * m * n);
        MemorySegment da = MemorySegment.ofAddress(dA.address() + aOff), db = MemorySegment.ofAddress(dB.address() + bOff);
        assertTrue(Int8Ops.s8Unsupported(k, 0, da.address(), db.address()) != null || k % 16 == 0 && aOff == 0 && bOff == 0);
        dev.poison(dc, 4L * m * n, POISON_BYTE);
        ops.gemmS32(da, db, m, n, k, dc, Int8Ops.AUTO_TILE);
        assertArrayEquals(want, dev.ints(dc, m * n), m + "x" + n + "x" + k);
        // The FP32 epilogue takes the same path.
        float[] sw = {0.25f}, sx = {0.5f};
        MemorySegment dsx = dev.upload(sx), dsw = dev.upload(sw), dy = dev.alloc(4L * m * n);
        ops.gemmF32(da, db, m, n, k, new Int8Ops.Epilogue(dsx, false, dsw, false, null, null, false), dy, Int8Ops.AUTO_TILE);
        float[] y = dev.floats(dy, m * n);
        for (int i = 0; i < m * n; i++) assertEquals(want[i] * 0.125f, y[i], "y[" + i + "]");
    }

    @ParameterizedTest(name = "{0}x{1}x{2} G={3}")
    @CsvSource({"33,40,120,3", "65,72,40,5", "7,16,72,2"})
    void pegWithGroupsThatAreNotMultiplesOf16IsRepacked(int m, int n, int k, int groups) throws Throwable {
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        float[] gsx = new float[groups], sw = new float[n];
        for (int g = 0; g < groups; g++) gsx[g] = (float) Math.exp(r.nextGaussian()) * 0.01f;
        for (int j = 0; j < n; j++) sw[j] = (float) (0.5 + r.nextDouble()) * 0.003f;
        FloatRef ref = floatReference(a, b, m, n, k, null, false, gsx, sw, null, null, false);
        MemorySegment da = dev.upload(a), db = dev.upload(b), dgs = dev.upload(gsx), dsw = dev.upload(sw), dy = dev.poisoned(4L * m * n, 0xFF);
        ops.gemmPegF32(da, db, m, n, k, groups, dgs, new Int8Ops.Epilogue(MemorySegment.NULL, false, dsw, true, null, null, false), dy,
                Int8Ops.AUTO_TILE);
        float[] y = dev.floats(dy, m * n);
        for (int i = 0; i < m * n; i++)
            if (!(Math.abs(y[i] - ref.y()[i]) <= ref.tol()[i])) fail("PEG repacked: y[" + i + "] = " + y[i] + ", want " + ref.y()[i]);
    }

    /**
     * Outputs that are only naturally aligned (a float at 4 bytes past a 16-byte boundary) take element-wise stores:
     * the plain GEMM's kernels and the PEG's (the wgmma PEG's paired stores must fall back the same way).
     */
    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"65,64,64", "33,130,96", "129,36,384"})
    void misalignedOutputsAreWrittenElementWise(int m, int n, int k) throws Throwable {
        Random r = GpuTest.freshRandom();
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int[] acc = referenceGemm(a, b, m, n, k, 0, k);
        float[] sx = {0.5f}, sw = {0.25f}, res = GpuTest.random(r, m * n, 1f);
        MemorySegment da = dev.upload(a), db = dev.upload(b), dsx = dev.upload(sx), dsw = dev.upload(sw);
        float[] resPad = new float[m * n + 1];
        System.arraycopy(res, 0, resPad, 1, m * n);
        MemorySegment dres = MemorySegment.ofAddress(dev.upload(resPad).address() + 4);
        MemorySegment dy = MemorySegment.ofAddress(dev.alloc(4L * m * n + 16).address() + 4);
        MemorySegment dh = MemorySegment.ofAddress(dev.alloc(2L * m * n + 16).address() + 2);
        MemorySegment dq = MemorySegment.ofAddress(dev.alloc((long) m * n + 16).address() + 1);
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(dsx, false, dsw, false, null, dres, false);
        ops.gemmF32(da, db, m, n, k, e, dy, Int8Ops.AUTO_TILE);
        ops.gemmF16(da, db, m, n, k, e, dh, Int8Ops.AUTO_TILE);
        ops.gemmS8(da, db, m, n, k, e, 0.5f, dq, Int8Ops.AUTO_TILE);
        checkExact(acc, res, dev.floats(dy, m * n), dev.shorts(dh, m * n), dev.bytes(dq, m * n), "plain");
        // The PEG GEMM, groups of 32 channels (the wgmma PEG where it runs), every group scale 0.5: each fold
        // 0.5 * acc_g is exact and so is their sum, so y = 0.25 * 0.5 * acc + residual as above.
        int groups = k / 32;
        float[] half = new float[groups];
        java.util.Arrays.fill(half, 0.5f);
        MemorySegment dgs = dev.upload(half);
        // The plain outputs are the same values: poison them all, or a PEG that wrote nothing would pass.
        dev.poison(MemorySegment.ofAddress(dy.address() - 4), 4L * m * n + 16, 0xFF);
        dev.poison(MemorySegment.ofAddress(dh.address() - 2), 2L * m * n + 16, 0xFF);
        dev.poison(MemorySegment.ofAddress(dq.address() - 1), (long) m * n + 16, POISON_Q);
        Int8Ops.Epilogue pe = new Int8Ops.Epilogue(MemorySegment.NULL, false, dsw, false, null, dres, false);
        ops.gemmPegF32(da, db, m, n, k, groups, dgs, pe, dy, Int8Ops.AUTO_TILE);
        ops.gemmPegF16(da, db, m, n, k, groups, dgs, pe, dh, Int8Ops.AUTO_TILE);
        ops.gemmPegS8(da, db, m, n, k, groups, dgs, pe, 0.5f, dq, Int8Ops.AUTO_TILE);
        checkExact(acc, res, dev.floats(dy, m * n), dev.shorts(dh, m * n), dev.bytes(dq, m * n), "PEG G=" + groups);
    }

    private static void checkExact(int[] acc, float[] res, float[] y, short[] h, byte[] q, String what) {
        for (int i = 0; i < acc.length; i++) {
            float want = acc[i] * 0.125f + res[i]; // acc * 0.125 is exact, one rounding in the sum
            assertEquals(want, y[i], what + " y[" + i + "]");
            assertEquals(Float.floatToFloat16(want), h[i], what + " f16 y[" + i + "]");
            assertEquals(quantize(want, 0.5f), q[i], what + " s8 q[" + i + "]");
        }
    }

    /** CudaBackend's int8 linear with an input width that is not a multiple of 16 (zero-padded when prepared). */
    @ParameterizedTest(name = "in={0} out={1} rows={2} static={3}")
    @CsvSource({"40,24,33,false", "40,24,33,true", "100,130,7,false", "768,64,17,false"})
    void int8LinearWithAnOddInputWidth(int in, int out, int rows, boolean staticScale) {
        Random r = GpuTest.freshRandom();
        float[] w = GpuTest.random(r, out * in, 0.05f), bias = GpuTest.random(r, out, 0.5f), x = GpuTest.random(r, rows * in, 1f);
        float inputScale = staticScale ? 3f / 127 : Float.NaN;
        try (CudaBackend gpu = CudaBackend.open(0)) {
            var lw = gpu.prepareInt8Linear(new BertWeights.Linear("odd", w, bias, out, in), inputScale);
            var gx = gpu.upload(x);
            var gy = gpu.allocate(rows * out);
            gpu.linear(gx, rows, lw, Backend.Epilogue.NONE, gy);
            float[] y = GpuTest.download(gpu, gy);
            // Java emulation: per-channel weights, static or per-token inputs, exact integer sums.
            float[] sw = new float[out];
            byte[] wq = CudaBackend.quantizeWeightsS8(w, out, in, in, sw);
            for (int i = 0; i < rows; i++) {
                float am = 0;
                for (int c = 0; c < in; c++) am = Math.max(am, Math.abs(x[i * in + c]));
                float sx = staticScale ? inputScale : am > 0 ? am / 127f : 1f;
                for (int j = 0; j < out; j++) {
                    long acc = 0;
                    for (int c = 0; c < in; c++) acc += quantize(x[i * in + c], sx) * wq[j * in + c];
                    double pre = acc * (double) sx * sw[j], want = pre + bias[j];
                    double tol = 0x1p-20 * (Math.abs(pre) + Math.abs(bias[j])) + 1e-30;
                    if (!(Math.abs(y[i * out + j] - want) <= tol))
                        fail(String.format("int8 linear in=%d: y[%d,%d] = %s, want %s", in, i, j, y[i * out + j], want));
                }
            }
        }
    }

    // ---- quantization ----

    /** Gaussian values, outliers past the clamp, and exact ties (x / s = j + 0.5) for round-half-to-even. */
    static float[] quantInputs(Random r, int n, float s) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            switch (i % 5) {
                case 0, 1 -> x[i] = (float) r.nextGaussian() * 40 * s;
                case 2 -> x[i] = (r.nextInt(301) - 150 + 0.5f) * s; // a tie when s is a power of 2
                case 3 -> x[i] = (float) r.nextGaussian() * 400 * s; // often clamped
                default -> x[i] = (r.nextInt(255) - 127) * s; // exactly on the grid
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0}x{1} scale {2}")
    @CsvSource({"1,1,0.25", "3,5,0.25", "7,33,0.0371", "64,768,0.125", "128,3072,0.0078125", "9,1001,0.37"})
    void quantizePerTensorIsExact(int rows, int cols, float scale) throws Throwable {
        Random r = GpuTest.freshRandom();
        float[] x = quantInputs(r, rows * cols, scale);
        MemorySegment dx = dev.upload(x), dq = dev.poisoned(rows * cols, POISON_Q);
        ops.quantizePerTensor(dx, rows, cols, scale, dq);
        byte[] q = dev.bytes(dq, rows * cols);
        for (int i = 0; i < x.length; i++)
            if (q[i] != quantize(x[i], scale)) fail("x[" + i + "] = " + x[i] + " / " + scale + ": got " + q[i] + ", want " + quantize(x[i], scale));
        int ties = 0;
        for (float v : x) if (Math.abs(v / scale - Math.rint(v / scale)) == 0.5) ties++;
        System.out.printf("  quantize per tensor %dx%d: exact (%d ties)%n", rows, cols, ties);
    }

    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"1,1", "5,768", "9,33", "1000,384", "3,3072", "17,4"})
    void quantizePerTokenIsExact(int rows, int cols) throws Throwable {
        Random r = GpuTest.freshRandom();
        float[] x = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            float s = (float) Math.exp(r.nextGaussian() * 3) * 0.01f;
            float[] row = quantInputs(r, cols, s);
            if (i == 1) java.util.Arrays.fill(row, 0f); // an all-zero row: scale 1
            if (i == 2) java.util.Arrays.fill(row, -0f);
            System.arraycopy(row, 0, x, i * cols, cols);
        }
        MemorySegment dx = dev.upload(x), dq = dev.poisoned(rows * cols, POISON_Q), ds = dev.poisoned(4L * rows, 0xFF);
        ops.quantizePerToken(dx, rows, cols, dq, ds);
        byte[] q = dev.bytes(dq, rows * cols);
        float[] scales = dev.floats(ds, rows);
        for (int i = 0; i < rows; i++) {
            float absmax = 0;
            for (int c = 0; c < cols; c++) absmax = Math.max(absmax, Math.abs(x[i * cols + c]));
            float s = absmax > 0 ? absmax / 127f : 1f;
            assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(scales[i]), "scale of row " + i);
            for (int c = 0; c < cols; c++) {
                int idx = i * cols + c;
                if (q[idx] != quantize(x[idx], s)) fail("row " + i + " col " + c + ": x = " + x[idx] + ", got " + q[idx] + ", want " + quantize(x[idx], s));
            }
        }
    }

    @ParameterizedTest(name = "{0}x{1} G={2}")
    @CsvSource({"17,384,3", "6,96,6", "5,33,3", "64,768,12", "2,3072,1", "3,10,5"})
    void quantizePerGroupIsExact(int rows, int cols, int groups) throws Throwable {
        Random r = GpuTest.freshRandom();
        int gs = cols / groups;
        float[] s = new float[groups];
        for (int g = 0; g < groups; g++) s[g] = r.nextBoolean() ? (float) Math.scalb(1.0, -r.nextInt(10)) : (float) Math.exp(r.nextGaussian()) * 0.02f;
        float[] x = new float[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int g = 0; g < groups; g++) System.arraycopy(quantInputs(r, gs, s[g]), 0, x, i * cols + g * gs, gs);
        MemorySegment dx = dev.upload(x), ds = dev.upload(s), dq = dev.poisoned(rows * cols, POISON_Q);
        ops.quantizePerGroup(dx, rows, cols, groups, ds, dq);
        byte[] q = dev.bytes(dq, rows * cols);
        for (int idx = 0; idx < x.length; idx++) {
            float sc = s[(idx % cols) / gs];
            if (q[idx] != quantize(x[idx], sc)) fail("element " + idx + ": x = " + x[idx] + " / " + sc + ", got " + q[idx] + ", want " + quantize(x[idx], sc));
        }
    }

    /** Into rows of ldq > cols bytes: the same bytes, zeros after (the K padding of the int8 linear). */
    @ParameterizedTest(name = "{0}x{1} ldq {2}")
    @CsvSource({"5,40,48", "33,100,112", "7,4,16", "9,768,784"})
    void quantizeIntoPaddedRows(int rows, int cols, int ldq) throws Throwable {
        Random r = GpuTest.freshRandom();
        float s = 0.05f;
        float[] x = quantInputs(r, rows * cols, s);
        MemorySegment dx = dev.upload(x), dq = dev.poisoned((long) rows * ldq, POISON_Q), dqt = dev.poisoned((long) rows * ldq, POISON_Q),
                ds = dev.alloc(4L * rows);
        ops.quantizePerTensor(dx, rows, cols, s, dq, ldq);
        ops.quantizePerToken(dx, rows, cols, dqt, ldq, ds);
        byte[] q = dev.bytes(dq, rows * ldq), qt = dev.bytes(dqt, rows * ldq);
        float[] scales = dev.floats(ds, rows);
        for (int i = 0; i < rows; i++) {
            float am = 0;
            for (int c = 0; c < cols; c++) am = Math.max(am, Math.abs(x[i * cols + c]));
            float st = am > 0 ? am / 127f : 1f;
            assertEquals(st, scales[i], "token scale of row " + i);
            for (int c = 0; c < ldq; c++) {
                assertEquals(c < cols ? quantize(x[i * cols + c], s) : 0, q[i * ldq + c], "per tensor row " + i + " col " + c);
                assertEquals(c < cols ? quantize(x[i * cols + c], st) : 0, qt[i * ldq + c], "per token row " + i + " col " + c);
            }
        }
    }

    @Test
    void quantizeThenGemmReproducesTheFloatProduct() throws Throwable {
        Assumptions.assumeFalse(QUICK, "quick mode");
        // End to end: per-token activations, per-channel weights (quantized on the host with the same rule),
        // FP32 epilogue; compared with the FP32 product it approximates (INT8 error, not rounding).
        Random r = GpuTest.freshRandom();
        int m = 200, n = 384, k = 768;
        float[] x = GpuTest.random(r, m * k, 1f), w = GpuTest.random(r, n * k, 0.05f);
        float[] sw = new float[n];
        byte[] wq = new byte[n * k];
        for (int j = 0; j < n; j++) {
            float am = 0;
            for (int c = 0; c < k; c++) am = Math.max(am, Math.abs(w[j * k + c]));
            sw[j] = am / 127f;
            for (int c = 0; c < k; c++) wq[j * k + c] = quantize(w[j * k + c], sw[j]);
        }
        MemorySegment dx = dev.upload(x), dxq = dev.alloc((long) m * k), dsx = dev.alloc(4L * m), dwq = dev.upload(wq),
                dsw = dev.upload(sw), dy = dev.poisoned(4L * m * n, 0xFF);
        ops.quantizePerToken(dx, m, k, dxq, dsx);
        ops.gemmF32(dxq, dwq, m, n, k, new Int8Ops.Epilogue(dsx, true, dsw, true, null, null, false), dy, Int8Ops.AUTO_TILE);
        float[] y = dev.floats(dy, m * n), ref = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int c = 0; c < k; c++) s += (double) x[i * k + c] * w[j * k + c];
                ref[i * n + j] = (float) s;
            }
        double e = GpuTest.relativeError(y, ref);
        System.out.printf("  quantize + int8 gemm vs fp32 product 200x384x768: rel err %.2e%n", e);
        assertTrue(e < 0.03, "INT8 error " + e);
    }
}
