package dev.qdrift.backend.cpu;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.GradientOps;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.BertWeights;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The reference backend: FP32 on the Java heap, vectorized with the Vector API and parallel over all
 * cores. Every GPU kernel is checked against these functions.
 */
public final class CpuBackend implements Backend {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** Threads that run a parallel op: the calling thread plus one pool worker per further core. */
    static final int THREADS = Runtime.getRuntime().availableProcessors();

    /**
     * The pool workers. Our own pool rather than the ForkJoin common pool: on 2 cores the common pool
     * has parallelism 1, and a parallel stream then cuts the range into only 4 to 8 chunks, so a
     * thread that starts late or is preempted leaves a whole chunk (up to a quarter of the op) to the
     * other. Daemon threads, so they never keep a JVM alive.
     */
    private static final ExecutorService WORKERS = THREADS == 1 ? null : Executors.newFixedThreadPool(THREADS - 1, r -> {
        Thread t = new Thread(r, "qdrift-cpu-worker");
        t.setDaemon(true);
        return t;
    });
    private static final ThreadLocal<Boolean> IN_WORKER = ThreadLocal.withInitial(() -> false);

    /**
     * Runs body(0) .. body(tasks - 1), each once, on the caller and the pool workers, and returns when
     * all have finished. Tasks are handed out one at a time from a shared counter, so a thread that
     * starts late or is slowed by another process simply takes fewer of them. Which thread runs a task
     * never changes what it computes: callers make each task write its own outputs, in a fixed order.
     * Called from inside a task, it runs the tasks itself (the workers are busy with the outer loop).
     */
    static void parallelFor(int tasks, IntConsumer body) {
        if (tasks <= 1 || WORKERS == null || IN_WORKER.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(tasks);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable drain = () -> {
            boolean outer = IN_WORKER.get();
            IN_WORKER.set(true);
            try {
                for (int i; (i = next.getAndIncrement()) < tasks; done.countDown()) {
                    try {
                        body.accept(i);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }
            } finally {
                IN_WORKER.set(outer);
            }
        };
        for (int w = 0; w < Math.min(THREADS - 1, tasks - 1); w++) WORKERS.execute(drain);
        drain.run();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for CPU workers", e);
        }
        Throwable e = failure.get();
        if (e instanceof RuntimeException r) throw r;
        if (e instanceof Error r) throw r;
        if (e != null) throw new IllegalStateException(e);
    }

    record Floats(float[] a) implements FloatBuf {
        public int size() {
            return a.length;
        }
    }

    record Ints(int[] a) implements IntBuf {
        public int size() {
            return a.length;
        }
    }

    static float[] f(FloatBuf b) {
        return ((Floats) b).a;
    }

    static int[] i(IntBuf b) {
        return ((Ints) b).a;
    }

    @Override
    public String name() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " cores, " + S.vectorBitSize() + "-bit vectors)";
    }

    /** The Java heap has a garbage collector: nothing to release. */
    @Override
    public Scope openScope() {
        return () -> {};
    }

    @Override
    public FloatBuf allocate(int n) {
        return new Floats(new float[n]);
    }

    @Override
    public FloatBuf upload(float[] data) {
        return new Floats(data.clone());
    }

    @Override
    public IntBuf uploadInts(int[] data) {
        return new Ints(data.clone());
    }

    @Override
    public void download(FloatBuf src, float[] dst) {
        if (dst.length != src.size())
            throw new IllegalArgumentException("download: buffer holds " + src.size() + " floats, destination " + dst.length);
        System.arraycopy(f(src), 0, dst, 0, dst.length);
    }

    @Override
    public void write(FloatBuf dst, float[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " floats, source " + data.length);
        System.arraycopy(data, 0, f(dst), 0, data.length);
    }

    @Override
    public void write(FloatBuf dst, double[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " floats, source " + data.length);
        float[] a = f(dst);
        for (int i = 0; i < data.length; i++) a[i] = (float) data[i];
    }

    @Override
    public void download(FloatBuf src, double[] dst) {
        if (dst.length != src.size())
            throw new IllegalArgumentException("download: buffer holds " + src.size() + " floats, destination " + dst.length);
        float[] a = f(src);
        for (int i = 0; i < dst.length; i++) dst[i] = a[i];
    }

    @Override
    public void write(IntBuf dst, int[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " ints, source " + data.length);
        System.arraycopy(data, 0, ((Ints) dst).a(), 0, data.length);
    }

    @Override
    public FloatBuf allocateKept(int n) {
        return allocate(n);
    }

    @Override
    public IntBuf allocateKeptInts(int n) {
        return new Ints(new int[n]);
    }

    @Override
    public void release(FloatBuf kept) {} // the garbage collector's

    @Override
    public void release(IntBuf kept) {}

    @Override
    public LinearWeights prepareLinear(BertWeights.Linear l) {
        return CpuGemm.pack(l.weight(), l.bias(), l.out(), l.in());
    }

    /** Rows per parallel task of the row-wise ops (embedding sum, layer norm). */
    private static final int ROWS_PER_TASK = 32;

    @Override
    public void embed(IntBuf idsBuf, IntBuf typeBuf, FloatBuf word, FloatBuf position, FloatBuf type,
                      int batch, int seq, int hidden, FloatBuf outBuf) {
        int[] ids = i(idsBuf), types = i(typeBuf);
        float[] w = f(word), p = f(position), t = f(type), out = f(outBuf);
        int rows = batch * seq;
        parallelFor((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, task -> {
            for (int r = task * ROWS_PER_TASK; r < Math.min(rows, task * ROWS_PER_TASK + ROWS_PER_TASK); r++) {
                int wo = ids[r] * hidden, po = (r % seq) * hidden, to = types[r] * hidden, o = r * hidden;
                for (int d = 0; d < hidden; d++) out[o + d] = w[wo + d] + t[to + d] + p[po + d];
            }
        });
    }

    @Override
    public void linear(FloatBuf x, int rows, LinearWeights w, Epilogue epilogue, FloatBuf y) {
        CpuGemm.multiply(f(x), rows, (CpuGemm.Packed) w, epilogue, f(y));
    }

    @Override
    public void addLayerNorm(FloatBuf xBuf, FloatBuf residualBuf, FloatBuf gammaBuf, FloatBuf betaBuf, float eps,
                             int rows, int dim, FloatBuf outBuf, FloatBuf sumBuf) {
        float[] x = f(xBuf), res = residualBuf == null ? null : f(residualBuf), g = f(gammaBuf), b = f(betaBuf), out = f(outBuf);
        float[] sumOut = sumBuf == null ? null : f(sumBuf);
        parallelFor((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, task -> {
            float[] v = new float[dim];
            for (int r = task * ROWS_PER_TASK; r < Math.min(rows, task * ROWS_PER_TASK + ROWS_PER_TASK); r++)
                layerNormRow(x, res, g, b, eps, r * dim, dim, v, out, sumOut);
        });
    }

    /**
     * One row: v = x + residual (kept in scratch v, since out may alias x or residual), mean and
     * variance as vector partial sums added up by {@link CpuMath#sumLanes} (a fixed order), then the
     * normalized row.
     */
    private static void layerNormRow(float[] x, float[] res, float[] g, float[] b, float eps, int o, int dim,
                                     float[] v, float[] out, float[] sumOut) {
        int bound = S.loopBound(dim), d;
        for (d = 0; d < bound; d += S.length()) {
            FloatVector s = FloatVector.fromArray(S, x, o + d);
            if (res != null) s = s.add(FloatVector.fromArray(S, res, o + d));
            s.intoArray(v, d);
        }
        for (; d < dim; d++) v[d] = res == null ? x[o + d] : x[o + d] + res[o + d];
        if (sumOut != null) System.arraycopy(v, 0, sumOut, o, dim);
        float mean = sum(v) / dim;
        FloatVector acc = FloatVector.zero(S);
        for (d = 0; d < bound; d += S.length()) {
            FloatVector c = FloatVector.fromArray(S, v, d).sub(mean);
            acc = c.fma(c, acc);
        }
        float var = CpuMath.sumLanes(acc);
        for (; d < dim; d++) {
            float c = v[d] - mean;
            var += c * c;
        }
        float inv = (float) (1 / Math.sqrt(var / dim + eps));
        for (d = 0; d < bound; d += S.length())
            FloatVector.fromArray(S, v, d).sub(mean).mul(inv).mul(FloatVector.fromArray(S, g, d))
                    .add(FloatVector.fromArray(S, b, d)).intoArray(out, o + d);
        for (; d < dim; d++) out[o + d] = (v[d] - mean) * inv * g[d] + b[d];
    }

    private static float sum(float[] v) {
        FloatVector acc = FloatVector.zero(S);
        int d = 0;
        for (; d < S.loopBound(v.length); d += S.length()) acc = acc.add(FloatVector.fromArray(S, v, d));
        float s = CpuMath.sumLanes(acc);
        for (; d < v.length; d++) s += v[d];
        return s;
    }

    @Override
    public void attention(FloatBuf qkvBuf, IntBuf maskBuf, int batch, int seq, int heads, int headDim, FloatBuf outBuf) {
        Backend.checkAttention(qkvBuf, maskBuf, batch, seq, heads, headDim, outBuf);
        CpuAttention.run(f(qkvBuf), i(maskBuf), batch, seq, heads, headDim, f(outBuf));
    }

    /** y[yo:yo+n] += a * x[xo:xo+n]. */
    private static void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        FloatVector av = FloatVector.broadcast(S, a);
        int j = 0;
        for (; j < S.loopBound(n); j += S.length())
            FloatVector.fromArray(S, x, xo + j).fma(av, FloatVector.fromArray(S, y, yo + j)).intoArray(y, yo + j);
        for (; j < n; j++) y[yo + j] += a * x[xo + j];
    }

    @Override
    public void pool(FloatBuf hiddenBuf, IntBuf maskBuf, int batch, int seq, int dim, Pooling mode, FloatBuf outBuf) {
        float[] h = f(hiddenBuf), out = f(outBuf);
        int[] mask = i(maskBuf);
        for (int b = 0; b < batch; b++) {
            if (mode == Pooling.CLS) {
                System.arraycopy(h, b * seq * dim, out, b * dim, dim);
                continue;
            }
            java.util.Arrays.fill(out, b * dim, (b + 1) * dim, 0f);
            int n = 0;
            for (int t = 0; t < seq; t++) {
                if (mask[b * seq + t] == 0) continue;
                n++;
                axpy(1f, h, (b * seq + t) * dim, out, b * dim, dim);
            }
            for (int d = 0; d < dim; d++) out[b * dim + d] /= n;
        }
    }

    @Override
    public void fakeQuantColumns(FloatBuf xBuf, int rows, int cols, FloatBuf scaleBuf, FloatBuf zpBuf, int qmin, int qmax) {
        float[] x = f(xBuf), scale = f(scaleBuf), zp = f(zpBuf);
        parallelFor(rows, r -> {
            for (int c = 0, o = r * cols; c < cols; c++, o++) x[o] = QuantGrid.fakeQuant(x[o], scale[c], zp[c], qmin, qmax);
        });
    }

    @Override
    public void fakeQuantRows(FloatBuf xBuf, int rows, int cols, int bits, boolean symmetric) {
        float[] x = f(xBuf);
        QuantGrid grid = new QuantGrid(bits, symmetric);
        parallelFor(rows, r -> {
            float lo = 0f, hi = 0f;
            for (int c = 0, o = r * cols; c < cols; c++, o++) {
                lo = Math.min(lo, x[o]);
                hi = Math.max(hi, x[o]);
            }
            QuantGrid.Params p = grid.params(lo, hi);
            for (int c = 0, o = r * cols; c < cols; c++, o++) x[o] = grid.fakeQuant(x[o], p);
        });
    }

    private final GradientOps gradientOps = new CpuGradientOps();

    @Override
    public GradientOps gradientOps() {
        return gradientOps;
    }

    @Override
    public void close() {}
}
