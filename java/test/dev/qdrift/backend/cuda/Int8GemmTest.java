package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

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
import org.junit.jupiter.api.Test;
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
 *       G folds of two roundings each on top of the epilogue's.
 *   <li>Quantize kernels: bytes and per-token scales bit-identical to the Java reference
 *       (float division, {@link Math#rint} = round half to even, clamp ±127), including exact ties.
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
        GpuTest.assumeGpu();
        cuda = new QdriftCuda(NativeLibraries.qdrift());
        cuda.setDevice(0);
        stream = cuda.streamCreate();
        ops = new Int8Ops(cuda, stream);
        System.out.println("device: " + cuda.deviceDescription(0));
        for (int t = 0; t < ops.tiles(); t++) System.out.println("  tile " + t + ": " + ops.tileName(t) + (ops.tileInfo(t)[5] == 1 ? " (PEG too)" : ""));
    }

    @AfterAll
    static void close() throws Throwable {
        if (cuda != null) cuda.streamDestroy(stream);
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

        byte[] bytes(MemorySegment d, int n) throws Throwable {
            try (Arena ar = Arena.ofConfined()) {
                MemorySegment h = ar.allocate(JAVA_BYTE, n);
                cuda.copyToHost(h, d, n, stream);
                return h.toArray(JAVA_BYTE);
            }
        }

        void close() throws Throwable {
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
        Random r = new Random(System.nanoTime());
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
        MemorySegment p = dev.alloc(4096);
        var e = assertThrows(IllegalArgumentException.class, () -> ops.gemmS32(p, p, 4, 4, 24, p, Int8Ops.AUTO_TILE));
        assertTrue(e.getMessage().contains("not a multiple of 16"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ops.gemmS32(p, p, 0, 4, 16, p, Int8Ops.AUTO_TILE));
        // The native checks too: K % 16, misaligned operand, PEG group size, an unknown tile.
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(p, p, 4, 4, 24, p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(MemorySegment.ofAddress(p.address() + 4), p, 4, 4, 16, p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmS32.invokeExact(p, p, 4, 4, 16, p, 99, stream));
        assertEquals(1, (int) cuda.i8GemmPegF32.invokeExact(p, p, 4, 4, 96, 4, p, p, 0, MemorySegment.NULL, MemorySegment.NULL, 0,
                p, -1, stream));
        assertEquals(1, (int) cuda.i8GemmPegF32.invokeExact(p, p, 4, 4, 64, 2, p, p, 0, MemorySegment.NULL, MemorySegment.NULL, 0,
                p, 1, stream)); // tile 1 has no PEG variant
        cuda.synchronize(stream);
    }

    // ---- FP32 epilogues ----

    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"1,384,384", "7,33,96", "129,384,384", "64,1152,384", "1000,1152,1536", "257,130,400"})
    void gemmFp32EpiloguesMatchAFloat64Reference(int m, int n, int k) throws Throwable {
        assumeSize(m, n, k);
        Random r = new Random(System.nanoTime());
        byte[] a = randomS8(r, m * k), b = randomS8(r, n * k);
        int[] acc = referenceGemm(a, b, m, n, k, 0, k);
        float[] sx = new float[m], sw = new float[n], bias = GpuTest.random(r, n, 2f), res = GpuTest.random(r, m * n, 3f);
        for (int i = 0; i < m; i++) sx[i] = (float) (0.5 + r.nextDouble()) * 0.02f;
        for (int j = 0; j < n; j++) sw[j] = (float) (0.5 + r.nextDouble()) * 0.003f;
        MemorySegment da = dev.upload(a), db = dev.upload(b), dsx = dev.upload(sx), dsw = dev.upload(sw), dbias = dev.upload(bias),
                dres = dev.upload(res), dy = dev.alloc(4L * m * n);
        int combos = 0;
        for (int mask = 0; mask < 32; mask++) {
            boolean xRow = (mask & 1) != 0, wCol = (mask & 2) != 0, hasBias = (mask & 4) != 0, gelu = (mask & 8) != 0, hasRes = (mask & 16) != 0;
            Int8Ops.Epilogue e = new Int8Ops.Epilogue(dsx, xRow, dsw, wCol, hasBias ? dbias : null, hasRes ? dres : null, gelu);
            // every tile once with everything on, the automatic pick for every combination
            int[] tiles = mask == 31 ? IntStream.range(-1, ops.tiles()).toArray() : new int[] {Int8Ops.AUTO_TILE};
            for (int t : tiles) {
                dev.poison(dy, 4L * m * n, 0xFF);
                ops.gemmF32(da, db, m, n, k, e, dy, t);
                float[] y = dev.floats(dy, m * n);
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
                            fail(String.format("%dx%dx%d tile %d xRow=%b wCol=%b bias=%b gelu=%b res=%b: y[%d,%d] = %s, want %s (tol %.3g)",
                                    m, n, k, t, xRow, wCol, hasBias, gelu, hasRes, i, j, y[idx], want, tol));
                        worst = Math.max(worst, err / tol);
                    }
                combos++;
                if (mask == 31 && t == -1)
                    System.out.printf("  f32 epilogue %dx%dx%d all options: worst error %.3f of tolerance%n", m, n, k, worst);
            }
        }
        assertEquals(32 + ops.tiles(), combos);
        // In place: y is the residual buffer (the residual stream of an encoder layer).
        MemorySegment inPlace = dev.upload(res);
        ops.gemmF32(da, db, m, n, k, new Int8Ops.Epilogue(dsx, true, dsw, true, dbias, inPlace, false), inPlace, Int8Ops.AUTO_TILE);
        float[] y = dev.floats(inPlace, m * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                int idx = i * n + j;
                double pre = acc[idx] * (double) sx[i] * sw[j], want = pre + bias[j] + res[idx];
                double tol = 0x1p-20 * (Math.abs(pre) + Math.abs(bias[j]) + Math.abs(res[idx])) + 1e-30;
                if (!(Math.abs(y[idx] - want) <= tol)) fail(String.format("in place %dx%dx%d: y[%d,%d] = %s, want %s", m, n, k, i, j, y[idx], want));
            }
    }

    // ---- PEG ----

    @ParameterizedTest(name = "{0}x{1}x{2} G={3}")
    @CsvSource({"129,384,384,1", "129,384,384,3", "129,384,384,8", "129,384,384,24", "7,33,96,2", "7,33,96,6", "64,8,32,2",
            "1000,1152,1536,12", "257,130,400,5", "33,768,768,6"})
    void pegGemmMatchesAFloat64Reference(int m, int n, int k, int groups) throws Throwable {
        assumeSize(m, n, k);
        Random r = new Random(System.nanoTime());
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
        Random r = new Random(System.nanoTime());
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
        Random r = new Random(System.nanoTime());
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
        Random r = new Random(System.nanoTime());
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

    @Test
    void quantizeThenGemmReproducesTheFloatProduct() throws Throwable {
        Assumptions.assumeFalse(QUICK, "quick mode");
        // End to end: per-token activations, per-channel weights (quantized on the host with the same rule),
        // FP32 epilogue; compared with the FP32 product it approximates (INT8 error, not rounding).
        Random r = new Random(System.nanoTime());
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
