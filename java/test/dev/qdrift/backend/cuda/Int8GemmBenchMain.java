package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * INT8 GEMM benchmark (runs on the GPU host from .gpu/qdrift-tests.jar, see tools/gpu-run.sh for the
 * classpath): our mma.sync s8 GEMM at the BERT-base shapes 4096×768×768, 4096×3072×768, 4096×768×3072,
 * 16384×3072×768 (M×N×K) against the vendor libraries on the same device:
 *
 * <ul>
 *   <li>ours: int32 output (automatic tile and every tile), the FP32 epilogue (per-token × per-channel scales +
 *       bias; + GELU), FP16 and re-quantized s8 outputs of the same epilogue, and the PEG variant with G = 4
 *       and 6 (same epilogue, automatic tile and every PEG tile), plus the per-token quantize kernel;
 *   <li>cuBLASLt s8 TN → s32 (its heuristic's algorithm; output checked against ours);
 *   <li>cuBLAS FP16: cublasGemmEx with FP16 A, B and C and CUBLAS_COMPUTE_32F (FP32 accumulation, tensor
 *       cores) — what an FP16 inference engine runs for these layers;
 *   <li>cuBLAS FP32: cublasSgemm, CUBLAS_DEFAULT_MATH (true FP32, no TF32), what CudaBackend runs now.
 * </ul>
 *
 * <p>Rates: TOPS for the integer GEMMs, TFLOPS for the float ones, both 2·M·N·K / time. Ratios in the
 * summary: PEG / plain = PEG FP32 over our plain FP32 epilogue (same scales, bias and output: the cost of the
 * per-group folds); ours / cuBLASLt at int32 output; our FP32 epilogue over cuBLAS FP16 and FP32.
 *
 * <p>Timing: CUDA events around each launch, {@value #WARMUP} warm-up launches, median of {@value #RUNS}
 * timed launches rotating over {@value #SETS} input/output sets (so repeated runs do not read one buffer
 * from L2). The launches are queued behind the warm-up, so the GPU never waits for the host between them;
 * "gaps" reports (first start → last end) / Σ launch times − 1 as a check of that.
 *
 * <p>Usage: {@code java ... dev.qdrift.backend.cuda.Int8GemmBenchMain [M,N,K ...]}; with
 * {@code -Dqdrift.int8.bench.tiles=3,6} only those tiles' int32 GEMMs run (for a profiler); "wgmma" names the Hopper kernel.
 */
public final class Int8GemmBenchMain {
    static final int WARMUP = 30, RUNS = 60, SETS = 3;
    static final int[] PEG_GROUPS = {4, 6};
    static final long WORKSPACE = CublasLtPlans.WORKSPACE;
    static final String ONLY_TILES = System.getProperty("qdrift.int8.bench.tiles");

    @FunctionalInterface
    interface Work {
        void run(int set) throws Throwable;
    }

    record Timing(double medianMs, double minMs, double gaps) {}

    private final QdriftCuda cuda;
    private final MemorySegment stream;
    private final Int8Ops ops;
    private final List<MemorySegment> blocks = new ArrayList<>();

    Int8GemmBenchMain(QdriftCuda cuda, MemorySegment stream) {
        this.cuda = cuda;
        this.stream = stream;
        this.ops = new Int8Ops(cuda, stream);
    }

    MemorySegment alloc(long bytes) throws Throwable {
        MemorySegment p = cuda.malloc(bytes);
        blocks.add(p);
        return p;
    }

    MemorySegment randomBytes(Random r, long n) throws Throwable {
        byte[] h = new byte[(int) n];
        r.nextBytes(h);
        MemorySegment d = alloc(n);
        try (Arena a = Arena.ofConfined()) {
            cuda.copyToDevice(d, a.allocateFrom(JAVA_BYTE, h), n, stream);
        }
        return d;
    }

    MemorySegment randomFloats(Random r, int n, double lo, double hi) throws Throwable {
        float[] h = new float[n];
        for (int i = 0; i < n; i++) h[i] = (float) (lo + (hi - lo) * r.nextDouble());
        MemorySegment d = alloc(4L * n);
        try (Arena a = Arena.ofConfined()) {
            cuda.copyToDevice(d, a.allocateFrom(JAVA_FLOAT, h), 4L * n, stream);
        }
        return d;
    }

    /** FP16 (binary16 bits) uniform in [lo, hi). */
    MemorySegment randomHalves(Random r, long n, double lo, double hi) throws Throwable {
        short[] h = new short[(int) n];
        for (int i = 0; i < n; i++) h[i] = Float.floatToFloat16((float) (lo + (hi - lo) * r.nextDouble()));
        MemorySegment d = alloc(2L * n);
        try (Arena a = Arena.ofConfined()) {
            cuda.copyToDevice(d, a.allocateFrom(JAVA_SHORT, h), 2L * n, stream);
        }
        return d;
    }

    void freeAll() throws Throwable {
        cuda.synchronize(stream);
        for (MemorySegment p : blocks) cuda.free(p);
        blocks.clear();
    }

    Timing time(Work w) throws Throwable {
        for (int i = 0; i < WARMUP; i++) w.run(i % SETS);
        MemorySegment[] start = new MemorySegment[RUNS], end = new MemorySegment[RUNS];
        for (int i = 0; i < RUNS; i++) {
            start[i] = cuda.eventCreate();
            end[i] = cuda.eventCreate();
        }
        try {
            for (int i = 0; i < RUNS; i++) {
                cuda.eventRecord(start[i], stream);
                w.run(i % SETS);
                cuda.eventRecord(end[i], stream);
            }
            cuda.synchronize(stream);
            double[] ms = new double[RUNS];
            double sum = 0;
            for (int i = 0; i < RUNS; i++) sum += ms[i] = cuda.elapsedMs(start[i], end[i]);
            double span = cuda.elapsedMs(start[0], end[RUNS - 1]);
            Arrays.sort(ms);
            return new Timing((ms[RUNS / 2 - 1] + ms[RUNS / 2]) / 2, ms[0], span / sum - 1);
        } finally {
            for (int i = 0; i < RUNS; i++) {
                cuda.eventDestroy(start[i]);
                cuda.eventDestroy(end[i]);
            }
        }
    }

    /** Half a second of GEMMs first, so the clocks are up before the first timed launch. */
    void warmUp() throws Throwable {
        int m = 4096, n = 3072, k = 768;
        MemorySegment a = randomBytes(new Random(1), (long) m * k), b = randomBytes(new Random(2), (long) n * k), c = alloc(4L * m * n);
        long end = System.nanoTime() + 500_000_000L;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 20; i++) ops.gemmS32(a, b, m, n, k, c, 0);
            cuda.synchronize(stream);
        }
        freeAll();
    }

    static double tops(int m, int n, int k, double ms) {
        return 2.0 * m * n * k / (ms * 1e-3) / 1e12;
    }

    /** Times `w`, prints a line and records its rate under `key` (when not null). */
    double line(String what, int m, int n, int k, Work w, Map<String, Double> row, String key) throws Throwable {
        Timing t = time(w);
        double rate = tops(m, n, k, t.medianMs());
        System.out.printf("  %-56s %9.1f us %7.1f T%s/s  (min %.1f us, gaps %+.1f%%)%n", what, t.medianMs() * 1e3, rate,
                what.startsWith("cuBLAS FP") ? "FLOP" : "OP", t.minMs() * 1e3, 100 * t.gaps());
        if (key != null) row.put(key, rate);
        return rate;
    }

    int[] download(MemorySegment d, int n) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(JAVA_INT, n);
            cuda.copyToHost(h, d, 4L * n, stream);
            return h.toArray(JAVA_INT);
        }
    }

    /** Benchmarks one shape; returns its rates by column name (absent where not run). */
    Map<String, Double> shape(int m, int n, int k, CublasLt lt, Cublas blas, MemorySegment workspace) throws Throwable {
        Map<String, Double> row = new LinkedHashMap<>();
        Random r = new Random(42 + m + n + k);
        MemorySegment[] a = new MemorySegment[SETS], b = new MemorySegment[SETS], c = new MemorySegment[SETS], y = new MemorySegment[SETS],
                yh = new MemorySegment[SETS], yq = new MemorySegment[SETS];
        for (int s = 0; s < SETS; s++) {
            a[s] = randomBytes(r, (long) m * k);
            b[s] = randomBytes(r, (long) n * k);
            c[s] = alloc(4L * m * n);
            y[s] = alloc(4L * m * n);
            yh[s] = alloc(2L * m * n);
            yq[s] = alloc((long) m * n);
        }
        MemorySegment sx = randomFloats(r, m, 0.01, 0.02), sw = randomFloats(r, n, 0.001, 0.002), bias = randomFloats(r, n, -1, 1),
                gsx = randomFloats(r, 6, 0.01, 0.02), x = randomFloats(r, m * k, -3, 3), xq = alloc((long) m * k), xs = alloc(4L * m);
        System.out.printf("%n%d x %d x %d (M x N x K), %.2f G ops%n", m, n, k, 2.0 * m * n * k / 1e9);
        if (ONLY_TILES != null) {
            for (String ts : ONLY_TILES.split(",")) {
                int tile = ts.trim().equals("wgmma") ? Int8Ops.WGMMA : Integer.parseInt(ts.trim());
                line(tile == Int8Ops.WGMMA ? "wgmma s32" : "mma.sync s32, tile " + tile + " (" + ops.tileName(tile) + ")", m, n, k,
                        s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], tile), row, null);
            }
            freeAll();
            return row;
        }
        int auto = ops.pickTile(m, n, k, 0);
        line("mma.sync s32, auto = tile " + auto + " (" + ops.tileName(auto) + ")", m, n, k,
                s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], Int8Ops.AUTO_TILE), row, "s32");
        double best = 0;
        for (int t = 0; t < ops.tiles(); t++) {
            int tile = t;
            best = Math.max(best, line("mma.sync s32, tile " + t + " (" + ops.tileName(t) + ")", m, n, k,
                    s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], tile), row, null));
        }
        row.put("s32best", best);
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(sx, true, sw, true, bias, null, false);
        line("mma.sync f32 (token x channel scales, bias)", m, n, k, s -> ops.gemmF32(a[s], b[s], m, n, k, e, y[s], Int8Ops.AUTO_TILE),
                row, "f32");
        Int8Ops.Epilogue eg = new Int8Ops.Epilogue(sx, true, sw, true, bias, null, true);
        line("mma.sync f32 + GELU", m, n, k, s -> ops.gemmF32(a[s], b[s], m, n, k, eg, y[s], Int8Ops.AUTO_TILE), row, "gelu");
        line("mma.sync f16 out (scales, bias)", m, n, k, s -> ops.gemmF16(a[s], b[s], m, n, k, e, yh[s], Int8Ops.AUTO_TILE), row, "f16");
        line("mma.sync s8 out (scales, bias, requantized)", m, n, k,
                s -> ops.gemmS8(a[s], b[s], m, n, k, e, 0.05f, yq[s], Int8Ops.AUTO_TILE), row, "s8");
        for (int groups : PEG_GROUPS) {
            if (k % groups != 0 || (k / groups) % 16 != 0) continue;
            int pt = ops.pickTile(m, n, k, groups), gs = k / groups;
            line("PEG f32 G=" + groups + " (gs " + gs + "), auto = tile " + pt + " (" + ops.tileName(pt) + ")", m, n, k,
                    s -> ops.gemmPegF32(a[s], b[s], m, n, k, groups, gsx, e, y[s], Int8Ops.AUTO_TILE), row, "peg" + groups);
            for (int t = 0; t < ops.tiles(); t++) {
                int[] info = ops.tileInfo(t);
                if (info[5] != 1) continue;
                int tile = t;
                line("PEG f32 G=" + groups + ", tile " + t + " (" + ops.tileName(t) + ")" + (gs % info[2] == 0 ? "" : " per k-step"), m, n,
                        k, s -> ops.gemmPegF32(a[s], b[s], m, n, k, groups, gsx, e, y[s], tile), row, null);
            }
        }
        if (k % 6 == 0 && (k / 6) % 16 == 0)
            line("PEG s8 out G=6", m, n, k, s -> ops.gemmPegS8(a[s], b[s], m, n, k, 6, gsx, e, 0.05f, yq[s], Int8Ops.AUTO_TILE), row, null);
        Timing tq = time(s -> ops.quantizePerToken(x, m, k, xq, xs));
        System.out.printf("  %-56s %9.1f us %7.1f GB/s (5 bytes per element)%n", "quantize per token " + m + "x" + k,
                tq.medianMs() * 1e3, 5.0 * m * k / (tq.medianMs() * 1e-3) / 1e9);
        if (lt != null) {
            try (CublasLt.Plan p = lt.planS8(m, n, k, workspace, WORKSPACE)) {
                MemorySegment[] cl = new MemorySegment[SETS];
                for (int s = 0; s < SETS; s++) cl[s] = alloc(4L * m * n);
                line("cuBLASLt s8 TN -> s32 (waves " + String.format("%.2f", p.waves) + ")", m, n, k, s -> p.run(a[s], b[s], cl[s], stream), row,
                        "lt");
                ops.gemmS32(a[0], b[0], m, n, k, c[0], Int8Ops.AUTO_TILE);
                p.run(a[0], b[0], cl[0], stream);
                int[] ours = download(c[0], m * n), theirs = download(cl[0], m * n);
                int diff = 0;
                for (int i = 0; i < ours.length; i++) if (ours[i] != theirs[i]) diff++;
                System.out.printf("  ours vs cuBLASLt int32 output: %s%n", diff == 0 ? "identical" : diff + " elements differ");
            } catch (RuntimeException ex) {
                System.out.println("  cuBLASLt: " + ex.getMessage());
            }
        }
        if (blas != null) {
            try {
                MemorySegment[] ha = new MemorySegment[SETS], hb = new MemorySegment[SETS], hc = new MemorySegment[SETS];
                for (int s = 0; s < SETS; s++) {
                    ha[s] = randomHalves(r, (long) m * k, -1, 1);
                    hb[s] = randomHalves(r, (long) n * k, -1, 1);
                    hc[s] = alloc(2L * m * n);
                }
                line("cuBLAS FP16 GemmEx (fp16 in/out, fp32 compute)", m, n, k, s -> blas.gemmRowMajorNTHalf(ha[s], hb[s], hc[s], m, n, k),
                        row, "fp16");
                MemorySegment[] fa = new MemorySegment[SETS], fb = new MemorySegment[SETS];
                for (int s = 0; s < SETS; s++) {
                    fa[s] = randomFloats(r, m * k, -1, 1);
                    fb[s] = randomFloats(r, n * k, -1, 1);
                }
                line("cuBLAS FP32 Sgemm (no TF32)", m, n, k, s -> blas.gemmRowMajorNT(fa[s], fb[s], y[s], m, n, k, false), row, "fp32");
            } catch (RuntimeException ex) {
                System.out.println("  cuBLAS: " + ex.getMessage());
            }
        }
        freeAll();
        return row;
    }

    static String cell(Map<String, Double> row, String key, String fmt) {
        Double v = row.get(key);
        return v == null ? "-" : String.format(fmt, v);
    }

    static String ratio(Map<String, Double> row, String num, String den) {
        Double a = row.get(num), b = row.get(den);
        return a == null || b == null ? "-" : String.format("%.2f", a / b);
    }

    public static void main(String[] args) throws Throwable {
        List<int[]> shapes = new ArrayList<>();
        for (String s : args) shapes.add(Arrays.stream(s.split(",")).mapToInt(Integer::parseInt).toArray());
        if (shapes.isEmpty())
            shapes = List.of(new int[] {4096, 768, 768}, new int[] {4096, 3072, 768}, new int[] {4096, 768, 3072},
                    new int[] {16384, 3072, 768});
        QdriftCuda cuda = new QdriftCuda(NativeLibraries.qdrift());
        cuda.setDevice(0);
        MemorySegment stream = cuda.streamCreate();
        Int8GemmBenchMain bench = new Int8GemmBenchMain(cuda, stream);
        System.out.println("device: " + cuda.deviceDescription(0));
        CublasLt lt = null;
        try {
            lt = CublasLt.open();
        } catch (RuntimeException e) {
            System.out.println("cuBLASLt unavailable: " + e.getMessage());
        }
        Cublas blas = null;
        try {
            blas = new Cublas(NativeLibraries.system("libcublas.so.13"), cuda, stream);
        } catch (RuntimeException e) {
            System.out.println("cuBLAS unavailable: " + e.getMessage());
        }
        MemorySegment workspace = cuda.malloc(WORKSPACE);
        if (ONLY_TILES == null) bench.warmUp();
        List<Map<String, Double>> rows = new ArrayList<>();
        for (int[] s : shapes) rows.add(bench.shape(s[0], s[1], s[2], lt, blas, workspace));
        System.out.printf("%nOurs, TOPS (median of %d launches, %d rotating input/output sets); PEG/f32 = PEG FP32 over plain FP32 epilogue%n",
                RUNS, SETS);
        System.out.printf("%-16s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s%n", "M x N x K", "s32", "best", "f32", "gelu", "f16out", "s8out",
                "PEG4", "PEG6", "PEG4/f32", "PEG6/f32");
        for (int i = 0; i < shapes.size(); i++) {
            int[] s = shapes.get(i);
            Map<String, Double> v = rows.get(i);
            System.out.printf("%-16s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s%n", s[0] + "x" + s[1] + "x" + s[2], cell(v, "s32", "%.1f"),
                    cell(v, "s32best", "%.1f"), cell(v, "f32", "%.1f"), cell(v, "gelu", "%.1f"), cell(v, "f16", "%.1f"), cell(v, "s8", "%.1f"),
                    cell(v, "peg4", "%.1f"), cell(v, "peg6", "%.1f"), ratio(v, "peg4", "f32"), ratio(v, "peg6", "f32"));
        }
        System.out.printf("%nReferences: cuBLASLt s8 -> s32 TOPS, cuBLAS FP16 (GemmEx, FP32 compute) and FP32 (Sgemm, no TF32) TFLOPS%n");
        System.out.printf("%-16s %9s %8s %9s %9s %9s %9s %9s%n", "M x N x K", "cuBLASLt", "s32/Lt", "FP16", "FP32", "f32/FP16",
                "f32/FP32", "s8out/FP16");
        for (int i = 0; i < shapes.size(); i++) {
            int[] s = shapes.get(i);
            Map<String, Double> v = rows.get(i);
            System.out.printf("%-16s %9s %8s %9s %9s %9s %9s %9s%n", s[0] + "x" + s[1] + "x" + s[2], cell(v, "lt", "%.1f"),
                    ratio(v, "s32", "lt"), cell(v, "fp16", "%.1f"), cell(v, "fp32", "%.1f"), ratio(v, "f32", "fp16"), ratio(v, "f32", "fp32"),
                    ratio(v, "s8", "fp16"));
        }
        cuda.free(workspace);
        if (lt != null) lt.close();
        if (blas != null) blas.close();
        cuda.streamDestroy(stream);
    }
}
