package dev.qdrift.experiment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.RandomWeights;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The IG benchmark's driver on the CPU backend (the GPU figures come from bench/gpu/ig-run.sh). */
class IgBenchTest {
    private static final BertConfig CONFIG = new BertConfig(30522, 16, 1, 2, 32, 64, 2, 1e-12f);
    private static final BertWeights WEIGHTS = RandomWeights.generate(CONFIG, 3, false);

    @Test
    void timesEachSchemeAndCountsItsFlops() {
        try (CpuBackend cpu = new CpuBackend()) {
            IgBench.Result r = IgBench.run("tiny", WEIGHTS, cpu, List.of("fp32", "w8a8-sym"), 4, 8, 0, 1);
            assertEquals(2, r.rows().size());
            for (IgBench.Row row : r.rows()) {
                assertTrue(row.msPerIg() > 0, row.toString());
                assertEquals(IgBench.flops(CONFIG, 8, 4) / 1e9, row.gflop(), 1e-12);
                assertNull(row.tf32Error(), "no TF32 row, no TF32 error");
            }
            assertEquals("w8a8-sym (simulated)", r.rows().get(1).scheme());
        }
    }

    @Test
    void badSchemeOptionsAreRefused() {
        try (CpuBackend cpu = new CpuBackend()) {
            QdriftException tf32 = assertThrows(QdriftException.class, () -> IgBench.run("tiny", WEIGHTS, cpu, List.of("fp32+tf32"), 4, 8, 0, 1));
            assertTrue(tf32.getMessage().contains("--device cuda"), tf32.getMessage());
            QdriftException unknown = assertThrows(QdriftException.class, () -> IgBench.run("tiny", WEIGHTS, cpu, List.of("fp32+fast"), 4, 8, 0, 1));
            assertTrue(unknown.getMessage().contains("+fast"), unknown.getMessage());
            assertThrows(QdriftException.class, () -> IgBench.run("tiny", WEIGHTS, cpu, List.of("fp32+"), 4, 8, 0, 1), "an empty option");
        }
    }

    @Test
    void relativeErrorIsTheRelativeTwoNorm() {
        assertEquals(0.0, IgBench.relativeError(new double[] {3, 4}, new double[] {3, 4}));
        assertEquals(0.2, IgBench.relativeError(new double[] {3, 5}, new double[] {3, 4}), 1e-15);
    }
}
