package dev.qdrift.backend;

/** Tests' way between separate q, k, v matrices [rows, width] and the packed q | k | v rows {@link Backend#attention} reads. */
public final class PackedQkv {
    /** [rows, 3 width]: row r is q[r] | k[r] | v[r]. */
    public static float[] pack(float[] q, float[] k, float[] v, int rows, int width) {
        float[] qkv = new float[rows * 3 * width];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(q, r * width, qkv, r * 3 * width, width);
            System.arraycopy(k, r * width, qkv, r * 3 * width + width, width);
            System.arraycopy(v, r * width, qkv, r * 3 * width + 2 * width, width);
        }
        return qkv;
    }

    /** Part which (0 q, 1 k, 2 v) of packed rows, [rows, width]. */
    public static float[] part(float[] qkv, int which, int rows, int width) {
        float[] m = new float[rows * width];
        for (int r = 0; r < rows; r++) System.arraycopy(qkv, r * 3 * width + which * width, m, r * width, width);
        return m;
    }

    private PackedQkv() {}
}
