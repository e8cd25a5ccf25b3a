package dev.qdrift.model.weights;

import java.util.Arrays;

/** A named FP32 tensor in row-major order, as read from a weight file. */
public record Tensor(String name, int[] shape, float[] data) {
    public Tensor {
        long n = numel(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape)
                    + " holds " + n + " values but " + data.length + " were given");
        }
    }

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i];
    }

    /** Rows and columns of a rank-2 tensor swapped (ONNX MatMul weights are stored [in, out]). */
    public Tensor transposed() {
        if (shape.length != 2) throw new IllegalStateException(name + " is not a matrix");
        int r = shape[0], c = shape[1];
        float[] t = new float[data.length];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j * r + i] = data[i * c + j];
        return new Tensor(name, new int[] {c, r}, t);
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
