package dev.qdrift.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.backend.cpu.CpuBackend;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The quantize -> dequantize arithmetic: ties, clipping, zero ranges, outliers, and the error bound. */
class QuantGridTest {
    @Test
    void tiesRoundHalfToEven() {
        // scale 1, zero point 0: x = 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0
        assertEquals(2f, QuantGrid.fakeQuant(2.5f, 1f, 0f, -127, 127));
        assertEquals(4f, QuantGrid.fakeQuant(3.5f, 1f, 0f, -127, 127));
        assertEquals(-2f, QuantGrid.fakeQuant(-2.5f, 1f, 0f, -127, 127));
        assertEquals(0f, QuantGrid.fakeQuant(0.5f, 1f, 0f, -127, 127));
        assertEquals(2f, QuantGrid.fakeQuant(1.5f, 1f, 0f, -127, 127));
    }

    @Test
    void valuesOutsideTheGridClip() {
        QuantGrid g = new QuantGrid(8, true);
        QuantGrid.Params p = g.params(-1f, 1f); // scale 1/127
        assertEquals(1f, g.fakeQuant(5f, p), 1e-7);
        assertEquals(-1f, g.fakeQuant(-5f, p), 1e-7);
        QuantGrid a = new QuantGrid(8, false);
        QuantGrid.Params pa = a.params(0f, 2.55f); // scale 0.01, zero point 0
        assertEquals(2.55f, a.fakeQuant(3f, pa), 1e-6);
        assertEquals(0f, a.fakeQuant(-1f, pa));
    }

    @Test
    void gridsAndZeroPoints() {
        assertEquals(-127, new QuantGrid(8, true).qmin());
        assertEquals(127, new QuantGrid(8, true).qmax());
        assertEquals(255, new QuantGrid(8, false).qmax());
        assertEquals(-7, new QuantGrid(4, true).qmin());
        QuantGrid.Params p = new QuantGrid(8, false).params(-1f, 3f); // scale 4/255, zp rint(63.75) = 64
        assertEquals(4f / 255, p.scale(), 1e-9);
        assertEquals(64f, p.zeroPoint());
        assertEquals(0f, new QuantGrid(8, false).fakeQuant(0f, p), "zero must stay exact");
    }

    @Test
    void zeroRangeIsExactNotNaN() {
        QuantGrid g = new QuantGrid(8, false);
        QuantGrid.Params p = g.params(0f, 0f);
        assertEquals(1f, p.scale());
        assertEquals(0f, g.fakeQuant(0f, p));
        // A constant positive tensor: the range is widened to [0, c], so c is representable.
        QuantGrid.Params c = g.params(0.7f, 0.7f);
        assertEquals(0.7f, g.fakeQuant(0.7f, c), 1e-6);
    }

    @Test
    void aSingleHugeOutlierCrushesTheRestToFewLevels() {
        // The failure mode of per-tensor W8A8 on BERT: one channel at 100, the rest within +-1.
        QuantGrid g = new QuantGrid(8, true);
        QuantGrid.Params p = g.params(-100f, 100f); // scale 0.787
        assertEquals(100f, g.fakeQuant(100f, p), 1e-4);
        assertEquals(0f, g.fakeQuant(0.3f, p)); // 0.3 / 0.787 rounds to 0: the small values vanish
        assertEquals(p.scale(), g.fakeQuant(0.5f, p), 1e-6);
    }

    @Test
    void errorIsAtMostHalfAStepInsideTheRange() {
        long seed = System.nanoTime();
        Random r = new Random(seed);
        for (int trial = 0; trial < 200; trial++) {
            int bits = 2 + r.nextInt(7);
            QuantGrid g = new QuantGrid(bits, r.nextBoolean());
            float lo = -r.nextFloat() * 10, hi = r.nextFloat() * 10;
            QuantGrid.Params p = g.params(lo, hi);
            // the representable range of the grid
            float gridLo = (g.qmin() - p.zeroPoint()) * p.scale(), gridHi = (g.qmax() - p.zeroPoint()) * p.scale();
            for (int i = 0; i < 200; i++) {
                float x = lo + r.nextFloat() * (hi - lo);
                if (x < gridLo || x > gridHi) continue;
                float e = Math.abs(g.fakeQuant(x, p) - x);
                // Half a step, plus float's roundings: the quotient x / scale can land on the far side
                // of a tie (scale * ulp(x / scale)), and the dequantized value and the difference are
                // each rounded once more (an ulp of |x| each). CI once failed a bound relative to the
                // scale alone by 3e-7 at |x| = 6.2, where one ulp is 4.8e-7.
                float bound = p.scale() / 2 + p.scale() * Math.ulp(Math.abs(x / p.scale())) + 2 * Math.ulp(Math.abs(x));
                assertTrue(e <= bound, "seed " + seed + ", " + bits + " bits: |" + x + " - q| = " + e + " > " + bound
                        + " (scale/2 " + p.scale() / 2 + ")");
            }
        }
    }

    @Test
    void badBitWidthsAreRefused() {
        assertThrows(QdriftException.class, () -> new QuantGrid(0, true));
        assertThrows(QdriftException.class, () -> new QuantGrid(9, false));
        assertThrows(QdriftException.class, () -> new QuantSpec(1, true, QuantSpec.Granularity.PER_TENSOR, 0, QuantSpec.Calibrator.MINMAX, 0));
    }

    @Test
    void cpuBackendFakeQuantMatchesTheScalarDefinition() {
        Random r = new Random(System.nanoTime());
        CpuBackend cpu = new CpuBackend();
        int rows = 13, cols = 37;
        float[] x = new float[rows * cols], scale = new float[cols], zp = new float[cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * 3;
        for (int c = 0; c < cols; c++) {
            scale[c] = 0.01f + r.nextFloat() * 0.1f;
            zp[c] = r.nextInt(256);
        }
        Backend.FloatBuf buf = cpu.upload(x);
        cpu.fakeQuantColumns(buf, rows, cols, cpu.upload(scale), cpu.upload(zp), 0, 255);
        float[] got = new float[x.length];
        cpu.download(buf, got);
        for (int i = 0; i < x.length; i++) assertEquals(QuantGrid.fakeQuant(x[i], scale[i % cols], zp[i % cols], 0, 255), got[i]);
        // per-token: each row on its own symmetric grid, so the row's max |x| is exact
        buf = cpu.upload(x);
        cpu.fakeQuantRows(buf, rows, cols, 8, true);
        cpu.download(buf, got);
        for (int row = 0; row < rows; row++) {
            float m = 0;
            int at = 0;
            for (int c = 0; c < cols; c++)
                if (Math.abs(x[row * cols + c]) > m) {
                    m = Math.abs(x[row * cols + c]);
                    at = c;
                }
            assertEquals(x[row * cols + at], got[row * cols + at], 1e-6f * m);
        }
    }
}
