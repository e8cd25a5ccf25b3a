package dev.qdrift.metrics;

/** How a quantized model's outputs move away from the FP32 model's on the same inputs. */
public final class Drift {
    private Drift() {}

    /** KL(softmax(p) ‖ softmax(q)) in nats, in float64 with max-subtraction. */
    public static double kl(float[] pLogits, float[] qLogits) {
        double[] p = logSoftmax(pLogits), q = logSoftmax(qLogits);
        double kl = 0;
        for (int i = 0; i < p.length; i++) kl += Math.exp(p[i]) * (p[i] - q[i]);
        return Math.max(0, kl);
    }

    public static double meanKl(float[][] p, float[][] q) {
        double s = 0;
        for (int i = 0; i < p.length; i++) s += kl(p[i], q[i]);
        return s / p.length;
    }

    /** Examples whose predicted class differs. */
    public static int flips(int[] a, int[] b) {
        int n = 0;
        for (int i = 0; i < a.length; i++) if (a[i] != b[i]) n++;
        return n;
    }

    static double[] logSoftmax(float[] z) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : z) max = Math.max(max, v);
        for (float v : z) sum += Math.exp(v - max);
        double lse = max + Math.log(sum);
        double[] out = new double[z.length];
        for (int i = 0; i < z.length; i++) out[i] = z[i] - lse;
        return out;
    }
}
