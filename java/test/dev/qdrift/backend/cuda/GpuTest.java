package dev.qdrift.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.Backend;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;

/** Shared helpers of the GPU tests: skip with the backend's reason where there is no GPU; compare. */
final class GpuTest {
    static void assumeGpu() {
        CudaBackend.Availability a = CudaBackend.availability();
        Assumptions.assumeTrue(a.available(), "GPU test skipped: " + a.reason());
    }

    /**
     * A fresh random source for one test (new inputs every run, never a fixed set), its seed printed so that a
     * failure can be replayed with {@code new Random(seed)}.
     */
    static Random freshRandom() {
        long seed = System.nanoTime();
        System.out.println("  random seed " + seed);
        return new Random(seed);
    }

    static float[] random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    /** A GPU buffer filled with NaN bytes first, so that an element a kernel skips fails the comparison. */
    static Backend.FloatBuf poisoned(CudaBackend gpu, int n) {
        Backend.FloatBuf b = gpu.allocate(n);
        gpu.poison(b);
        return b;
    }

    /** A GPU buffer for n FP16 values, two per float slot, NaN halves (0xFFFF) until a kernel writes them. */
    static Backend.FloatBuf poisonedHalves(CudaBackend gpu, int n) {
        return poisoned(gpu, (n + 1) / 2);
    }

    /** The n FP16 values (their bits) of a buffer that holds two per float slot, element 2i in the low 16 bits. */
    static short[] halves(CudaBackend gpu, Backend.FloatBuf packed, int n) {
        float[] slots = download(gpu, packed);
        short[] h = new short[n];
        for (int i = 0; i < n; i++) h[i] = (short) (Float.floatToRawIntBits(slots[i / 2]) >>> (16 * (i % 2)));
        return h;
    }

    /** Runs `work` with the backend's TF32 products on, then turns them off again (the tests' default, true FP32). */
    static <T> T withTf32(CudaBackend gpu, java.util.function.Supplier<T> work) {
        return withMode(gpu::useTf32, work);
    }

    static void withTf32(CudaBackend gpu, Runnable work) {
        withMode(gpu::useTf32, work);
    }

    /** Runs `work` with the backend's FP16 backward products on, then turns them off again. */
    static <T> T withHalfProducts(CudaBackend gpu, java.util.function.Supplier<T> work) {
        return withMode(gpu::useHalfProducts, work);
    }

    static void withHalfProducts(CudaBackend gpu, Runnable work) {
        withMode(gpu::useHalfProducts, work);
    }

    private static <T> T withMode(java.util.function.Consumer<Boolean> mode, java.util.function.Supplier<T> work) {
        mode.accept(true);
        try {
            return work.get();
        } finally {
            mode.accept(false);
        }
    }

    private static void withMode(java.util.function.Consumer<Boolean> mode, Runnable work) {
        withMode(mode, () -> {
            work.run();
            return null;
        });
    }

    static float[] download(Backend b, Backend.FloatBuf buf) {
        float[] out = new float[buf.size()];
        b.download(buf, out);
        return out;
    }

    /**
     * ‖got − want‖₂ / ‖want‖₂ in float64; NaN (an unwritten, poisoned element) fails. An exactly zero reference (attention's
     * dQ and dK over a single key, where the softmax is constant) must be met exactly: 0 if got is zero too, else infinite.
     */
    static double relativeError(float[] got, float[] want) {
        double d = 0, w = 0;
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(got[i])) return Double.NaN;
            double e = (double) got[i] - want[i];
            d += e * e;
            w += (double) want[i] * want[i];
        }
        if (w == 0) return d == 0 ? 0 : Double.POSITIVE_INFINITY;
        return Math.sqrt(d / w);
    }

    static void assertClose(float[] got, float[] want, double tolerance, String what) {
        double e = relativeError(got, want);
        System.out.printf("  %-48s rel err %.2e (tol %.0e)%n", what, e, tolerance);
        assertTrue(e <= tolerance, what + ": relative error " + e + " > " + tolerance);
    }

    private GpuTest() {}
}
