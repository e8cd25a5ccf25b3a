package dev.qdrift.backend.cuda;

import static dev.qdrift.backend.cuda.GpuTest.assertClose;
import static dev.qdrift.backend.cuda.GpuTest.download;
import static dev.qdrift.backend.cuda.GpuTest.poisoned;
import static dev.qdrift.backend.cuda.GpuTest.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.Epilogue;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertWeights;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every GPU op against the CPU backend on fresh seeded random inputs of several (ragged) shapes; GPU
 * outputs are poisoned with NaN before each op. Norm: ‖gpu − cpu‖₂ / ‖cpu‖₂ over the whole output.
 * Tolerances: 1e-6 for elementwise ops and LayerNorm (same FP32 formula, reduction order differs);
 * 1e-5 for the GEMM-based ops (cuBLAS FP32 sums K products in another order than our Java tiles: error
 * ~ sqrt(K) * 2^-24 relative; no TF32).
 */
class CudaKernelsTest {
    static CudaBackend gpu;
    static final CpuBackend cpu = new CpuBackend();

    @BeforeAll
    static void open() {
        if (!CudaBackend.available()) return;
        gpu = CudaBackend.open(0);
        System.out.println("device: " + gpu.deviceName());
    }

    /** Per test, so that each is reported skipped with the reason on a machine without a GPU. */
    @BeforeEach
    void needsGpu() {
        GpuTest.assumeGpu();
    }

    @AfterAll
    static void close() {
        if (gpu != null) gpu.close();
    }


    @ParameterizedTest
    @CsvSource({"1,384,384", "7,33,17", "130,1536,384", "128,384,1536", "4096,768,768", "61,3072,768"})
    void linearWithEachEpilogue(int m, int n, int k) {
        Random r = GpuTest.freshRandom();
        float[] x = random(r, m * k, 1f), w = random(r, n * k, 0.05f), b = random(r, n, 0.5f);
        BertWeights.Linear l = new BertWeights.Linear("t", w, b, n, k);
        Backend.LinearWeights cw = cpu.prepareLinear(l), gw = gpu.prepareLinear(l);
        for (Epilogue e : Epilogue.values()) {
            try (Backend.Scope s = gpu.openScope()) {
                Backend.FloatBuf cy = cpu.allocate(m * n), gy = poisoned(gpu, m * n);
                cpu.linear(cpu.upload(x), m, cw, e, cy);
                long fused = gpu.fp32LtRuns();
                gpu.linear(gpu.upload(x), m, gw, e, gy);
                String what = "linear " + e + " " + m + "x" + n + "x" + k;
                assertClose(download(gpu, gy), download(cpu, cy), 1e-5, what);
                // No epilogue: the bias rides in cuBLASLt's epilogue (the path under test, not the fallback).
                assertEquals(e == Epilogue.NONE ? fused + 1 : fused, gpu.fp32LtRuns(), what + ": on cuBLASLt with the bias");
                if (e != Epilogue.NONE) continue;
                // The TF32 plan: inputs rounded to 10 mantissa bits (relative 2^-11 each), FP32 sums.
                Backend.FloatBuf ty = poisoned(gpu, m * n);
                GpuTest.withTf32(gpu, () -> gpu.linear(gpu.upload(x), m, gw, e, ty));
                assertClose(download(gpu, ty), download(cpu, cy), 5e-3, "TF32 " + what);
            }
        }
    }

    @ParameterizedTest
    // Widths that are multiples of 4 up to 1024 run one warp per row (36, 500, 740 and 1000 with idle lanes in the last
    // float4 of the row; 256, 384, 768 without), the others (770, 4096) one block per row.
    @CsvSource({"1,384", "37,384", "512,768", "9,1000", "6,36", "2,256", "3,500", "4,740", "5,770", "3,4096"})
    void addLayerNormWithResidualAndSum(int rows, int dim) {
        Random r = GpuTest.freshRandom();
        float[] x = random(r, rows * dim, 3f), res = random(r, rows * dim, 1f), g = random(r, dim, 1f), b = random(r, dim, 1f);
        for (int i = 0; i < x.length; i += 101) x[i] += 60; // outlier channels
        try (Backend.Scope s = gpu.openScope()) {
            Backend.FloatBuf co = cpu.allocate(rows * dim), cs = cpu.allocate(rows * dim), go = poisoned(gpu, rows * dim), gs = poisoned(gpu, rows * dim);
            cpu.addLayerNorm(cpu.upload(x), cpu.upload(res), cpu.upload(g), cpu.upload(b), 1e-12f, rows, dim, co, cs);
            gpu.addLayerNorm(gpu.upload(x), gpu.upload(res), gpu.upload(g), gpu.upload(b), 1e-12f, rows, dim, go, gs);
            assertClose(download(gpu, go), download(cpu, co), 1e-6, "layernorm " + rows + "x" + dim);
            assertClose(download(gpu, gs), download(cpu, cs), 1e-7, "residual sum " + rows + "x" + dim);
            // In place (out aliases x), no residual, as the embedding LayerNorm runs.
            Backend.FloatBuf gx = gpu.upload(x), cx = cpu.upload(x);
            cpu.addLayerNorm(cx, null, cpu.upload(g), cpu.upload(b), 1e-12f, rows, dim, cx, null);
            gpu.addLayerNorm(gx, null, gpu.upload(g), gpu.upload(b), 1e-12f, rows, dim, gx, null);
            assertClose(download(gpu, gx), download(cpu, cx), 1e-6, "layernorm in place " + rows + "x" + dim);
        }
    }

    /**
     * The LayerNorm with its quantized sites fused against the ops it replaces, run on the GPU one after another
     * (add + LayerNorm, fake-quant of the sum, LayerNorm again, fake-quant of the output): bit-identical, sum and
     * output, with the output written over the residual as the encoder does; and with only the output's grid,
     * in place without a residual (the embeddings). Against the CPU (which runs the ops one after another): the
     * quantized sum bit-identical (same FP32 add and grid), the output within the LayerNorm tolerance (a value
     * that LayerNorm's rounding moves across a grid midpoint lands one step away: 1e-6 relative would not hold
     * for many such; the fused-vs-unfused check above is the exact one).
     */
    @ParameterizedTest
    @CsvSource({"1,384,true", "37,384,false", "512,768,true", "9,1000,false", "3,500,true", "4,740,false", "5,770,true", "3,4096,true"})
    void layerNormWithQuantizedSitesIsTheOpsInOne(int rows, int dim, boolean symmetric) {
        Random r = GpuTest.freshRandom();
        int n = rows * dim;
        float[] x = random(r, n, 3f), res = random(r, n, 1f), g = random(r, dim, 1f), b = random(r, dim, 1f);
        for (int i = 0; i < x.length; i += 101) x[i] += 60; // outliers, clipped by the grid below
        var grid = new dev.qdrift.backend.QuantGrid(8, symmetric);
        float[] sumScale = new float[dim], sumZp = new float[dim], outScale = new float[dim], outZp = new float[dim];
        for (int c = 0; c < dim; c++) {
            var p = grid.params(-2 - r.nextFloat() * 6, 2 + r.nextFloat() * 6);
            sumScale[c] = p.scale();
            sumZp[c] = p.zeroPoint();
            p = grid.params(-1 - r.nextFloat(), 1 + r.nextFloat()); // LayerNorm outputs past it clip
            outScale[c] = p.scale();
            outZp[c] = p.zeroPoint();
        }
        String what = rows + "x" + dim + (symmetric ? " symmetric" : " asymmetric");
        try (Backend.Scope s = gpu.openScope()) {
            Backend.FloatBuf gg = gpu.upload(g), gb = gpu.upload(b);
            Backend.ColumnGrid sumGrid = new Backend.ColumnGrid(gpu.upload(sumScale), gpu.upload(sumZp), grid.qmin(), grid.qmax()),
                    outGrid = new Backend.ColumnGrid(gpu.upload(outScale), gpu.upload(outZp), grid.qmin(), grid.qmax());
            Backend.FloatBuf fusedOut = gpu.upload(res), fusedSum = poisoned(gpu, n);
            gpu.addLayerNormQuantized(gpu.upload(x), fusedOut, sumGrid, outGrid, gg, gb, 1e-12f, rows, dim, fusedOut, fusedSum);
            Backend.FloatBuf out = gpu.upload(res), sum = poisoned(gpu, n);
            gpu.addLayerNorm(gpu.upload(x), out, gg, gb, 1e-12f, rows, dim, out, sum);
            gpu.fakeQuantColumns(sum, rows, dim, sumGrid.scale(), sumGrid.zeroPoint(), grid.qmin(), grid.qmax());
            gpu.addLayerNorm(sum, null, gg, gb, 1e-12f, rows, dim, out, null);
            gpu.fakeQuantColumns(out, rows, dim, outGrid.scale(), outGrid.zeroPoint(), grid.qmin(), grid.qmax());
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, sum), download(gpu, fusedSum), "quantized sum " + what);
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, out), download(gpu, fusedOut), "quantized output " + what);

            Backend.FloatBuf inPlace = gpu.upload(x), apart = gpu.upload(x);
            gpu.addLayerNormQuantized(inPlace, null, null, outGrid, gg, gb, 1e-12f, rows, dim, inPlace, null);
            gpu.addLayerNorm(apart, null, gg, gb, 1e-12f, rows, dim, apart, null);
            gpu.fakeQuantColumns(apart, rows, dim, outGrid.scale(), outGrid.zeroPoint(), grid.qmin(), grid.qmax());
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apart), download(gpu, inPlace), "in place, output grid " + what);

            Backend.FloatBuf cpuOut = cpu.upload(res), cpuSum = cpu.allocate(n);
            cpu.addLayerNormQuantized(cpu.upload(x), cpuOut, new Backend.ColumnGrid(cpu.upload(sumScale), cpu.upload(sumZp), grid.qmin(),
                    grid.qmax()), null, cpu.upload(g), cpu.upload(b), 1e-12f, rows, dim, cpuOut, cpuSum);
            Backend.FloatBuf unquantizedOut = gpu.upload(res);
            gpu.addLayerNormQuantized(gpu.upload(x), unquantizedOut, sumGrid, null, gg, gb, 1e-12f, rows, dim, unquantizedOut, sum);
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(cpu, cpuSum), download(gpu, sum), "quantized sum vs CPU " + what);
            assertClose(download(gpu, unquantizedOut), download(cpu, cpuOut), 1e-6, "output vs CPU " + what);
        }
    }

    /**
     * A site fused into the s8 layer it feeds (the layer's s8 operand written straight from x) against the site's ops
     * and then the layer quantizing its input itself, all on the GPU: bit-identical outputs, the GEMM reading the same
     * bytes. GELU then a grid (the FFN intermediate), a grid alone (the attention context), neither; widths 3072, 768
     * and 36 (K padded to 48); a symmetric grid whose upper ends clip and an asymmetric one; the s8
     * grid itself (per tensor, the layer's input scale: w8a8-sym's sites), which the kernel merges into the s8
     * quantization — with NaN and infinite inputs, which the merged path must take where the two passes take them.
     */
    @ParameterizedTest
    @CsvSource({"6400,3072,768,true,sym", "33,3072,64,true,asym", "5,36,20,true,none", "700,768,768,false,sym", "9,36,20,false,asym",
                "4,36,20,false,none", "6400,3072,768,true,s8", "37,768,64,false,s8"})
    void siteIntoLinearIsSiteThenLinear(int rows, int cols, int out, boolean gelu, String gridKind) {
        Random r = GpuTest.freshRandom();
        float[] x = random(r, rows * cols, 3f), w = random(r, out * cols, 0.05f), bias = random(r, out, 0.1f);
        float[] scale = new float[cols], zp = new float[cols];
        var grid = new dev.qdrift.backend.QuantGrid(8, !gridKind.equals("asym"));
        float inputScale = 3.5f / 127; // values past 3.5 clip in the s8 quantization too
        boolean s8Grid = gridKind.equals("s8");
        for (int c = 0; c < cols; c++) {
            var p = grid.params(-0.2f - r.nextFloat(), 0.5f + r.nextFloat() * 3);
            scale[c] = s8Grid ? inputScale : p.scale();
            zp[c] = s8Grid ? 0f : p.zeroPoint();
        }
        if (s8Grid) {
            x[1] = Float.NaN;
            x[2] = Float.POSITIVE_INFINITY;
            x[3] = Float.NEGATIVE_INFINITY;
        }
        try (Backend.Scope s = gpu.openScope()) {
            Backend.ColumnGrid columnGrid = gridKind.equals("none") ? null
                    : new Backend.ColumnGrid(gpu.upload(scale), gpu.upload(zp), grid.qmin(), grid.qmax(), s8Grid ? inputScale : Float.NaN);
            assertEquals(s8Grid, CudaBackend.isS8Grid(columnGrid, inputScale), "merged into the s8 quantization");
            BertWeights.Linear linear = new BertWeights.Linear("next", w, bias, out, cols);
            Backend.LinearWeights next = gpu.prepareInt8Linear(linear, inputScale);
            Backend.FloatBuf gx = gpu.upload(x), fused = poisoned(gpu, rows * out), apart = poisoned(gpu, rows * out);
            assertTrue(gpu.siteIntoLinear(gx, rows, cols, gelu, columnGrid, next, fused), "fused on an s8 layer with a static scale");
            Backend.FloatBuf site = poisoned(gpu, rows * cols);
            if (gelu) {
                gpu.gradientOps().gelu(gx, site, rows, cols, null);
            } else {
                gpu.gradientOps().copy(gx, site);
            }
            if (columnGrid != null) gpu.fakeQuantColumns(site, rows, cols, columnGrid.scale(), columnGrid.zeroPoint(), grid.qmin(), grid.qmax());
            gpu.linear(site, rows, next, Epilogue.NONE, apart);
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apart), download(gpu, fused),
                    "site into s8 linear " + rows + "x" + cols + " -> " + out + (gelu ? ", GELU" : "") + ", grid " + gridKind);
            // Where it cannot fuse it must say so and touch nothing: per-token scales, an FP32 layer, the CPU.
            Backend.FloatBuf untouched = poisoned(gpu, rows * out);
            org.junit.jupiter.api.Assertions.assertFalse(gpu.siteIntoLinear(gx, rows, cols, gelu, columnGrid,
                    gpu.prepareInt8Linear(linear, Float.NaN), untouched), "per-token input scales");
            org.junit.jupiter.api.Assertions.assertFalse(gpu.siteIntoLinear(gx, rows, cols, gelu, columnGrid, gpu.prepareLinear(linear),
                    untouched), "FP32 layer");
            for (float v : download(gpu, untouched)) assertTrue(Float.isNaN(v), "the output was written");
            org.junit.jupiter.api.Assertions.assertFalse(cpu.siteIntoLinear(cpu.upload(x), rows, cols, gelu, null, cpu.prepareLinear(linear),
                    cpu.allocate(rows * out)), "CPU");
        }
    }

    /**
     * A LayerNorm fused into the s8 layer it feeds (the layer's s8 operand written from the normalized rows) against the
     * LayerNorm and then the layer quantizing its input itself, all on the GPU: out, sum and y bit-identical. The output
     * written over the residual as the encoder does; quantized sites around the LayerNorm on symmetric / asymmetric grids
     * or none, or the output's grid the s8 grid itself (per tensor, the layer's input scale: w8a8-sym's sites, merged into
     * the s8 quantization); the GELU epilogue (the encoder's intermediate); width 36 with K padded to 48. Then again as
     * the embeddings' LayerNorm runs: in place, no residual, no sum. Rows it cannot take (a width not a multiple of 4,
     * wider than 1024) and layers it cannot feed: false, nothing written; the CPU: false.
     */
    @ParameterizedTest
    @CsvSource({"6400,768,2304,sym,NONE", "37,384,1536,asym,GELU", "5,36,20,none,NONE", "3,1024,64,sym,NONE", "9,770,64,none,NONE",
                "2,1028,64,none,NONE", "6400,768,3072,s8,GELU", "7,36,20,s8,NONE"})
    void layerNormIntoLinearIsLayerNormThenLinear(int rows, int dim, int out, String gridKind, Epilogue epilogue) {
        Random r = GpuTest.freshRandom();
        int n = rows * dim;
        float[] x = random(r, n, 3f), res = random(r, n, 1f), g = random(r, dim, 1f), b = random(r, dim, 1f),
                w = random(r, out * dim, 0.05f), bias = random(r, out, 0.1f);
        for (int i = 0; i < x.length; i += 101) x[i] += 60; // outlier channels
        boolean fusable = dim % 4 == 0 && dim <= 1024;
        String what = rows + "x" + dim + " -> " + out + ", grid " + gridKind + ", " + epilogue;
        try (Backend.Scope s = gpu.openScope()) {
            Backend.ColumnGrid sumGrid = null, outGrid = null;
            float inputScale = 2.5f / 127;
            if (!gridKind.equals("none")) {
                var grid = new dev.qdrift.backend.QuantGrid(8, !gridKind.equals("asym"));
                float[] sumScale = new float[dim], sumZp = new float[dim], outScale = new float[dim], outZp = new float[dim];
                for (int c = 0; c < dim; c++) {
                    var p = grid.params(-2 - r.nextFloat() * 6, 2 + r.nextFloat() * 6);
                    sumScale[c] = p.scale();
                    sumZp[c] = p.zeroPoint();
                    p = grid.params(-1 - r.nextFloat(), 1 + r.nextFloat());
                    outScale[c] = p.scale();
                    outZp[c] = p.zeroPoint();
                }
                sumGrid = new Backend.ColumnGrid(gpu.upload(sumScale), gpu.upload(sumZp), grid.qmin(), grid.qmax());
                if (gridKind.equals("s8")) {
                    java.util.Arrays.fill(outScale, inputScale);
                    java.util.Arrays.fill(outZp, 0f);
                }
                outGrid = new Backend.ColumnGrid(gpu.upload(outScale), gpu.upload(outZp), grid.qmin(), grid.qmax(),
                        gridKind.equals("s8") ? inputScale : Float.NaN);
            }
            assertEquals(gridKind.equals("s8"), CudaBackend.isS8Grid(outGrid, inputScale), "merged into the s8 quantization, " + what);
            Backend.LinearWeights next = gpu.prepareInt8Linear(new BertWeights.Linear("next", w, bias, out, dim), inputScale);
            Backend.FloatBuf gg = gpu.upload(g), gb = gpu.upload(b), fusedOut = gpu.upload(res), fusedSum = poisoned(gpu, n),
                    fusedY = poisoned(gpu, rows * out);
            boolean fused = gpu.addLayerNormIntoLinear(gpu.upload(x), fusedOut, sumGrid, outGrid, gg, gb, 1e-12f, rows, dim, fusedOut, fusedSum,
                    next, epilogue, fusedY);
            org.junit.jupiter.api.Assertions.assertEquals(fusable, fused, "fused, " + what);
            if (fused) {
                Backend.FloatBuf apartOut = gpu.upload(res), apartSum = poisoned(gpu, n), apartY = poisoned(gpu, rows * out);
                gpu.addLayerNormQuantized(gpu.upload(x), apartOut, sumGrid, outGrid, gg, gb, 1e-12f, rows, dim, apartOut, apartSum);
                gpu.linear(apartOut, rows, next, epilogue, apartY);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apartOut), download(gpu, fusedOut), "out, " + what);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apartSum), download(gpu, fusedSum), "sum, " + what);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apartY), download(gpu, fusedY), "y, " + what);
                Backend.FloatBuf inPlace = gpu.upload(x), inPlaceY = poisoned(gpu, rows * out), apartX = gpu.upload(x);
                assertTrue(gpu.addLayerNormIntoLinear(inPlace, null, null, outGrid, gg, gb, 1e-12f, rows, dim, inPlace, null, next, epilogue,
                        inPlaceY), "fused in place, " + what);
                gpu.addLayerNormQuantized(apartX, null, null, outGrid, gg, gb, 1e-12f, rows, dim, apartX, null);
                gpu.linear(apartX, rows, next, epilogue, apartY);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apartX), download(gpu, inPlace), "in place, out, " + what);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(gpu, apartY), download(gpu, inPlaceY), "in place, y, " + what);
            } else {
                org.junit.jupiter.api.Assertions.assertArrayEquals(res, download(gpu, fusedOut), "out was written, " + what);
                for (float v : download(gpu, fusedY)) assertTrue(Float.isNaN(v), "y was written, " + what);
            }
            // Where it cannot fuse it must say so and touch nothing: per-token scales, an FP32 layer (and the rows above).
            BertWeights.Linear linear = new BertWeights.Linear("next", w, bias, out, dim);
            Backend.FloatBuf untouched = poisoned(gpu, n), untouchedY = poisoned(gpu, rows * out);
            org.junit.jupiter.api.Assertions.assertFalse(gpu.addLayerNormIntoLinear(gpu.upload(x), null, null, null, gg, gb, 1e-12f, rows, dim,
                    untouched, null, gpu.prepareInt8Linear(linear, Float.NaN), epilogue, untouchedY), "per-token input scales, " + what);
            org.junit.jupiter.api.Assertions.assertFalse(gpu.addLayerNormIntoLinear(gpu.upload(x), null, null, null, gg, gb, 1e-12f, rows, dim,
                    untouched, null, gpu.prepareLinear(linear), epilogue, untouchedY), "FP32 layer, " + what);
            for (float v : download(gpu, untouched)) assertTrue(Float.isNaN(v), "out was written, " + what);
            for (float v : download(gpu, untouchedY)) assertTrue(Float.isNaN(v), "y was written, " + what);
            org.junit.jupiter.api.Assertions.assertFalse(cpu.addLayerNormIntoLinear(cpu.upload(x), null, null, null, cpu.upload(g), cpu.upload(b),
                    1e-12f, rows, dim, cpu.allocate(n), null, cpu.prepareLinear(linear), epilogue, cpu.allocate(rows * out)), "CPU");
        }
    }

    @ParameterizedTest
    // The batched products read and write each head in place; head dims 6 and 5 put heads off 16-byte boundaries,
    // which cuBLAS's tensor-core (TF32) kernels must handle too.
    // Under TF32, the shapes of at most 128 tokens with head dim 32 or 64 run the fused kernel (FusedAttention), the others
    // cuBLAS's TF32 products.
    @CsvSource({"1,1,1,8", "1,1,2,32", "2,5,2,32", "2,16,4,64", "3,17,12,32", "3,64,2,32", "4,128,12,32", "2,77,12,64", "3,128,12,64",
            "1,384,12,64", "2,9,3,6", "3,11,2,5"})
    void maskedAttention(int batch, int seq, int heads, int headDim) {
        Random r = GpuTest.freshRandom();
        int rows = batch * seq, width = heads * headDim;
        float[] qkv = random(r, rows * 3 * width, 1f); // each row q | k | v
        int[] mask = new int[rows];
        for (int b = 0; b < batch; b++) {
            int len = b == 0 ? seq : 1 + r.nextInt(seq);
            for (int t = 0; t < len; t++) mask[b * seq + t] = 1;
        }
        try (Backend.Scope s = gpu.openScope()) {
            Backend.FloatBuf co = cpu.allocate(rows * width), go = poisoned(gpu, rows * width);
            cpu.attention(cpu.upload(qkv), cpu.uploadInts(mask), batch, seq, heads, headDim, co);
            gpu.attention(gpu.upload(qkv), gpu.uploadInts(mask), batch, seq, heads, headDim, go);
            String shape = batch + "x" + seq + "x" + heads + "x" + headDim;
            assertClose(download(gpu, go), download(cpu, co), 1e-5, "attention " + shape);
            // TF32 rounds the products' inputs to 10 mantissa bits (relative 2^-11 = 4.9e-4 each): a few 1e-4 on the context
            // (3.6e-4 to 4.3e-4 measured on the H100, fused or not), held to 2e-3.
            Backend.FloatBuf tf32 = poisoned(gpu, rows * width);
            long fusedBefore = gpu.fusedAttentionRuns();
            GpuTest.withTf32(gpu, () -> gpu.attention(gpu.upload(qkv), gpu.uploadInts(mask), batch, seq, heads, headDim, tf32));
            long fusedRuns = gpu.fusedAttentionRuns() - fusedBefore;
            FusedAttention.assertRuns(gpu, seq, headDim, fusedRuns, "fused attention runs");
            boolean fused = fusedRuns > 0;
            assertClose(download(gpu, tf32), download(cpu, co), 2e-3, (fused ? "fused " : "") + "TF32 attention " + shape);
            Backend.FloatBuf packed = gpu.upload(qkv);
            assertThrows(IllegalArgumentException.class, () -> gpu.attention(packed, gpu.uploadInts(mask), batch, seq, heads, headDim,
                    packed), "out aliasing qkv");
            assertThrows(IllegalArgumentException.class, () -> gpu.attention(go, gpu.uploadInts(mask), batch, seq, heads, headDim,
                    poisoned(gpu, rows * width)), "qkv of rows x width, not rows x 3 width");
        }
    }

    @ParameterizedTest
    @CsvSource({"1,7,384", "16,128,384", "5,33,768"})
    void embeddingsAndPooling(int batch, int seq, int hidden) {
        Random r = GpuTest.freshRandom();
        int vocab = 1000, positions = 512;
        float[] word = random(r, vocab * hidden, 1f), pos = random(r, positions * hidden, 1f), type = random(r, 2 * hidden, 1f);
        int[] ids = new int[batch * seq], types = new int[batch * seq], mask = new int[batch * seq];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(vocab);
            types[i] = r.nextInt(2);
        }
        for (int b = 0; b < batch; b++) {
            int len = 1 + r.nextInt(seq);
            for (int t = 0; t < len; t++) mask[b * seq + t] = 1;
        }
        try (Backend.Scope s = gpu.openScope()) {
            Backend.FloatBuf ce = cpu.allocate(batch * seq * hidden), ge = poisoned(gpu, batch * seq * hidden);
            cpu.embed(cpu.uploadInts(ids), cpu.uploadInts(types), cpu.upload(word), cpu.upload(pos), cpu.upload(type), batch, seq, hidden, ce);
            gpu.embed(gpu.uploadInts(ids), gpu.uploadInts(types), gpu.upload(word), gpu.upload(pos), gpu.upload(type), batch, seq, hidden, ge);
            assertClose(download(gpu, ge), download(cpu, ce), 1e-7, "embed " + batch + "x" + seq + "x" + hidden);
            for (Backend.Pooling mode : Backend.Pooling.values()) {
                Backend.FloatBuf cp = cpu.allocate(batch * hidden), gp = poisoned(gpu, batch * hidden);
                cpu.pool(ce, cpu.uploadInts(mask), batch, seq, hidden, mode, cp);
                gpu.pool(ge, gpu.uploadInts(mask), batch, seq, hidden, mode, gp);
                assertClose(download(gpu, gp), download(cpu, cp), 1e-6, "pool " + mode + " " + batch + "x" + seq + "x" + hidden);
            }
        }
    }

    /** Same FP32 operations in the same order (QuantGrid's definition): bit-identical to the CPU. */
    @ParameterizedTest
    @CsvSource({"1,384,8", "33,768,8", "130,1536,4", "7,100,2", "512,384,6"})
    void fakeQuantPerColumnAndPerTokenAreBitIdentical(int rows, int cols, int bits) {
        Random r = GpuTest.freshRandom();
        float[] x = random(r, rows * cols, 2f), scale = new float[cols], zp = new float[cols];
        for (int i = 0; i < x.length; i += 53) x[i] *= 30; // outliers get clipped
        var grid = new dev.qdrift.backend.QuantGrid(bits, false);
        for (int c = 0; c < cols; c++) {
            var p = grid.params(-1 - r.nextFloat() * 4, 1 + r.nextFloat() * 4);
            scale[c] = p.scale();
            zp[c] = p.zeroPoint();
        }
        try (Backend.Scope s = gpu.openScope()) {
            Backend.FloatBuf cx = cpu.upload(x), gx = gpu.upload(x);
            cpu.fakeQuantColumns(cx, rows, cols, cpu.upload(scale), cpu.upload(zp), grid.qmin(), grid.qmax());
            gpu.fakeQuantColumns(gx, rows, cols, gpu.upload(scale), gpu.upload(zp), grid.qmin(), grid.qmax());
            org.junit.jupiter.api.Assertions.assertArrayEquals(download(cpu, cx), download(gpu, gx), "per-column " + rows + "x" + cols);
            for (boolean symmetric : new boolean[] {true, false}) {
                cx = cpu.upload(x);
                gx = gpu.upload(x);
                cpu.fakeQuantRows(cx, rows, cols, bits, symmetric);
                gpu.fakeQuantRows(gx, rows, cols, bits, symmetric);
                org.junit.jupiter.api.Assertions.assertArrayEquals(download(cpu, cx), download(gpu, gx),
                        "per-token " + (symmetric ? "symmetric " : "asymmetric ") + rows + "x" + cols);
            }
            System.out.printf("  fake-quant %dx%d %d-bit: bit-identical%n", rows, cols, bits);
        }
    }

    /**
     * Float64 transfers (the IG's input and result): rounded on the device exactly as Java's (float) cast rounds, and
     * widened back exactly — bit for bit (NaN as NaN) on fresh values: doubles between floats (ties included), beyond float's range,
     * below its subnormals, NaN and infinities, at odd lengths.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 7, 4099, 98304})
    void float64TransfersRoundAsJavaCasts(int n) {
        Random r = GpuTest.freshRandom();
        double[] special = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 3.5e38, -3.5e38, 1e-50, -0.0, 0x1.000001p0,
                0x1.0000018p0, Float.MIN_VALUE * 0.5, Float.MIN_VALUE * 0.75};
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = i < special.length ? special[i] : r.nextGaussian() * Math.pow(10, r.nextInt(9) - 4);
        Backend.FloatBuf d = gpu.allocate(n);
        gpu.poison(d);
        gpu.write(d, x);
        float[] got = GpuTest.download(gpu, d);
        double[] back = new double[n];
        gpu.download(d, back);
        for (int i = 0; i < n; i++) {
            float want = (float) x[i];
            // Bits, with every NaN as Java's one NaN (the device's NaN has another payload; either is "not a number")
            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i]), "rounded " + x[i] + " at " + i);
            assertEquals(Double.doubleToLongBits(want), Double.doubleToLongBits(back[i]), "widened " + want + " at " + i);
        }
    }

    /**
     * Uploads and downloads through the page-locked staging buffer: bit-exact round trips of floats and ints as it grows,
     * is reused by smaller transfers (an empty one too) and carries one larger than its cap in chunks (doubles too).
     */
    @Test
    void transfersRoundTripThroughTheStagingBuffer() {
        Random r = GpuTest.freshRandom();
        for (int n : new int[] {0, 1, 7, 1000, 98_304, 3, 9_000_001, 4099}) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = Float.intBitsToFloat(r.nextInt()); // any bit pattern, NaNs included
            int[] ids = r.ints(n).toArray();
            try (Backend.Scope s = gpu.openScope()) {
                float[] back = download(gpu, gpu.upload(x));
                int[] sent = new int[n], got = new int[n];
                for (int i = 0; i < n; i++) {
                    sent[i] = Float.floatToRawIntBits(x[i]);
                    got[i] = Float.floatToRawIntBits(back[i]);
                }
                org.junit.jupiter.api.Assertions.assertArrayEquals(sent, got, "floats, " + n);
                // Ints come back through a float download of the same bytes.
                Backend.IntBuf gi = gpu.uploadInts(ids);
                float[] bits = download(gpu, new CudaBackend.DeviceFloats(((CudaBackend.DeviceInts) gi).ptr(), n));
                for (int i = 0; i < n; i++) got[i] = Float.floatToRawIntBits(bits[i]);
                org.junit.jupiter.api.Assertions.assertArrayEquals(ids, got, "ints, " + n);
                if (n > 0) { // doubles (every NaN as Java's one NaN): 8-byte chunks, 72 MB for the largest, past the cap
                    double[] wide = new double[n], widened = new double[n];
                    for (int i = 0; i < n; i++) wide[i] = Float.isNaN(back[i]) ? Double.NaN : back[i];
                    Backend.FloatBuf d = gpu.allocate(n);
                    gpu.write(d, wide);
                    gpu.download(d, widened);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(wide, widened, "doubles, " + n);
                }
            }
        }
        assertTrue(gpu.stagingBytes() > 0 && gpu.stagingBytes() <= HostStaging.CAP, "page-locked staging held: " + gpu.stagingBytes());
    }

    @Test
    void aBadLaunchIsAJavaExceptionNamingTheOperation() {
        Backend.FloatBuf x = gpu.allocate(16);
        var e = assertThrows(CudaException.class,
                () -> gpu.addLayerNorm(x, null, x, x, 1e-12f, 1, 100_000, x, null));
        assertTrue(e.getMessage().contains("qd_add_layernorm 1x100000"), e.getMessage());
    }
}
