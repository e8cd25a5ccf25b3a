package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * INT8 GEMM benchmark (runs on the GPU host from .gpu/qdrift-tests.jar, see tools/gpu-run.sh for the
 * classpath): our mma.sync s8 GEMM at the BERT-base shapes 4096×768×768, 4096×3072×768, 4096×768×3072,
 * 16384×3072×768 (M×N×K), every tile shape and the automatic pick with int32 output, the FP32 epilogues
 * (per-token × per-channel scales + bias, + GELU), the PEG variant, and cuBLASLt's s8 TN GEMM (int32
 * output) where libcublasLt.so.13 is present, whose output is also checked against ours.
 *
 * <p>Timing: CUDA events around each launch, {@value #WARMUP} warm-up launches, median of {@value #RUNS}
 * timed launches rotating over {@value #SETS} input/output sets (so repeated runs do not read one buffer
 * from L2). The launches are queued behind the warm-up, so the GPU never waits for the host between them;
 * "gaps" reports (first start → last end) / Σ launch times − 1 as a check of that.
 *
 * <p>Usage: {@code java ... dev.qdrift.backend.cuda.Int8GemmBenchMain [M,N,K ...]}; with
 * {@code -Dqdrift.int8.bench.tiles=3,6} only those tiles' int32 GEMMs run (for a profiler).
 */
public final class Int8GemmBenchMain {
    static final int WARMUP = 30, RUNS = 60, SETS = 3, PEG_GROUPS = 6;
    static final long WORKSPACE = 32L << 20;
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

    void line(String what, int m, int n, int k, Timing t) {
        System.out.printf("  %-44s %9.1f us %7.1f TOPS  (min %.1f us, gaps %+.1f%%)%n", what, t.medianMs() * 1e3, tops(m, n, k, t.medianMs()),
                t.minMs() * 1e3, 100 * t.gaps());
    }

    int[] download(MemorySegment d, int n) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(JAVA_INT, n);
            cuda.copyToHost(h, d, 4L * n, stream);
            return h.toArray(JAVA_INT);
        }
    }

    /** Benchmarks one shape; returns {auto, best tile, f32 epilogue, f32+gelu, peg, cublasLt} TOPS (NaN where absent). */
    double[] shape(int m, int n, int k, CublasLt lt, MemorySegment workspace) throws Throwable {
        Random r = new Random(42 + m + n + k);
        MemorySegment[] a = new MemorySegment[SETS], b = new MemorySegment[SETS], c = new MemorySegment[SETS], y = new MemorySegment[SETS];
        for (int s = 0; s < SETS; s++) {
            a[s] = randomBytes(r, (long) m * k);
            b[s] = randomBytes(r, (long) n * k);
            c[s] = alloc(4L * m * n);
            y[s] = alloc(4L * m * n);
        }
        MemorySegment sx = randomFloats(r, m, 0.01, 0.02), sw = randomFloats(r, n, 0.001, 0.002), bias = randomFloats(r, n, -1, 1),
                gsx = randomFloats(r, PEG_GROUPS, 0.01, 0.02), x = randomFloats(r, m * k, -3, 3), xq = alloc((long) m * k),
                xs = alloc(4L * m);
        System.out.printf("%n%d x %d x %d (M x N x K), %.2f G ops%n", m, n, k, 2.0 * m * n * k / 1e9);
        int auto = ops.pickTile(m, n, k, 0);
        double[] out = new double[6];
        Arrays.fill(out, Double.NaN);
        if (ONLY_TILES != null) {
            for (String ts : ONLY_TILES.split(",")) {
                int tile = Integer.parseInt(ts.trim());
                line("mma.sync s32, tile " + tile + " (" + ops.tileName(tile) + ")", m, n, k,
                        time(s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], tile)));
            }
            freeAll();
            return out;
        }
        Timing ta = time(s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], Int8Ops.AUTO_TILE));
        line("mma.sync s32, auto = tile " + auto + " (" + ops.tileName(auto) + ")", m, n, k, ta);
        out[0] = tops(m, n, k, ta.medianMs());
        double best = 0;
        for (int t = 0; t < ops.tiles(); t++) {
            int tile = t;
            Timing tt = time(s -> ops.gemmS32(a[s], b[s], m, n, k, c[s], tile));
            line("mma.sync s32, tile " + t + " (" + ops.tileName(t) + ")", m, n, k, tt);
            best = Math.max(best, tops(m, n, k, tt.medianMs()));
        }
        out[1] = best;
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(sx, true, sw, true, bias, null, false);
        Timing tf = time(s -> ops.gemmF32(a[s], b[s], m, n, k, e, y[s], Int8Ops.AUTO_TILE));
        line("mma.sync f32 (token x channel scales, bias)", m, n, k, tf);
        out[2] = tops(m, n, k, tf.medianMs());
        Int8Ops.Epilogue eg = new Int8Ops.Epilogue(sx, true, sw, true, bias, null, true);
        Timing tg = time(s -> ops.gemmF32(a[s], b[s], m, n, k, eg, y[s], Int8Ops.AUTO_TILE));
        line("mma.sync f32 + GELU", m, n, k, tg);
        out[3] = tops(m, n, k, tg.medianMs());
        if (k % PEG_GROUPS == 0 && (k / PEG_GROUPS) % 16 == 0) {
            int pt = ops.pickTile(m, n, k, PEG_GROUPS);
            Timing tp = time(s -> ops.gemmPegF32(a[s], b[s], m, n, k, PEG_GROUPS, gsx, e, y[s], Int8Ops.AUTO_TILE));
            line("mma.sync PEG f32, G=" + PEG_GROUPS + ", tile " + pt + " (" + ops.tileName(pt) + ")", m, n, k, tp);
            out[4] = tops(m, n, k, tp.medianMs());
        }
        Timing tq = time(s -> ops.quantizePerToken(x, m, k, xq, xs));
        System.out.printf("  %-44s %9.1f us %7.1f GB/s (5 bytes per element)%n", "quantize per token " + m + "x" + k,
                tq.medianMs() * 1e3, 5.0 * m * k / (tq.medianMs() * 1e-3) / 1e9);
        if (lt != null) {
            try (CublasLt.Plan p = lt.planS8(m, n, k, workspace, WORKSPACE)) {
                MemorySegment[] cl = new MemorySegment[SETS];
                for (int s = 0; s < SETS; s++) cl[s] = alloc(4L * m * n);
                Timing tl = time(s -> p.run(a[s], b[s], cl[s], stream));
                line("cuBLASLt s8 TN -> s32 (waves " + String.format("%.2f", p.waves) + ")", m, n, k, tl);
                out[5] = tops(m, n, k, tl.medianMs());
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
        freeAll();
        return out;
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
            lt = new CublasLt(NativeLibraries.system("libcublasLt.so.13"));
        } catch (RuntimeException e) {
            System.out.println("cuBLASLt unavailable: " + e.getMessage());
        }
        MemorySegment workspace = cuda.malloc(WORKSPACE);
        if (ONLY_TILES == null) bench.warmUp();
        List<double[]> rows = new ArrayList<>();
        for (int[] s : shapes) rows.add(bench.shape(s[0], s[1], s[2], lt, workspace));
        System.out.printf("%nTOPS (median of %d, %d rotating sets)%n", RUNS, SETS);
        System.out.printf("%-18s %8s %8s %8s %8s %8s %9s %8s%n", "M x N x K", "auto", "best", "f32epi", "f32gelu", "peg", "cuBLASLt",
                "auto/Lt");
        for (int i = 0; i < shapes.size(); i++) {
            int[] s = shapes.get(i);
            double[] v = rows.get(i);
            System.out.printf("%-18s %8.1f %8.1f %8.1f %8.1f %8.1f %9.1f %8.2f%n", s[0] + "x" + s[1] + "x" + s[2], v[0], v[1], v[2], v[3],
                    v[4], v[5], v[0] / v[5]);
        }
        cuda.free(workspace);
        if (lt != null) lt.close();
        cuda.streamDestroy(stream);
    }
}
