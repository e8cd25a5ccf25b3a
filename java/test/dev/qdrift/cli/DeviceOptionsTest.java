package dev.qdrift.cli;

import static dev.qdrift.cli.ReportOptionTest.qdrift;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** --tf32 is a GPU option: refused on the CPU, and refused where the output cannot record it. Both before any work. */
class DeviceOptionsTest {
    @Test
    void tf32OnTheCpuIsRefused() {
        ReportOptionTest.Run r = qdrift("bench", "--model", "shape:minilm", "--device", "cpu", "--tf32", "--batch", "1", "--seq", "8",
                "--runs", "1", "--warmup", "0");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--tf32 needs the GPU (--device cuda)"), r.err());
    }

    @Test
    void trainHeadRefusesTf32() {
        ReportOptionTest.Run r = qdrift("train-head", "--model", "no-such-model", "--data", "no-such-data", "--tf32", "--out", "x");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--tf32 is not available here: a head is trained on FP32 features"), r.err());
    }
}
