package dev.qdrift.cli;

import static dev.qdrift.cli.ReportOptionTest.qdrift;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * --tf32, --fp16-backward and --int8-gemm cublaslt are GPU options: refused on the CPU (and --tf32 where the output cannot
 * record it, --fp16-backward where no gradient is computed); an unknown --int8-gemm is named. All before any work.
 */
class DeviceOptionsTest {
    /** qdrift with these arguments fails, saying `expected`. */
    private static void assertRefused(String expected, String... args) {
        ReportOptionTest.Run r = qdrift(args);
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains(expected), r.err());
    }

    @Test
    void tf32OnTheCpuIsRefused() {
        assertRefused("--tf32 needs the GPU (--device cuda)", "bench", "--model", "shape:minilm", "--device", "cpu", "--tf32", "--batch",
                "1", "--seq", "8", "--runs", "1", "--warmup", "0");
    }

    @Test
    void cublasLtOnTheCpuIsRefusedAndAnUnknownGemmNamed() {
        assertRefused("--int8-gemm cublaslt needs the GPU (--device cuda)", "bench", "--model", "shape:minilm", "--device", "cpu",
                "--scheme", "w8a8-sym", "--int8", "--int8-gemm", "cublaslt", "--batch", "1", "--seq", "8", "--runs", "1", "--warmup", "0");
        assertRefused("unknown --int8-gemm 'cutlass': use ours or cublaslt", "bench", "--model", "shape:minilm", "--device", "cpu",
                "--int8-gemm", "cutlass", "--batch", "1", "--seq", "8", "--runs", "1", "--warmup", "0");
    }

    /** --int8-gemm cublaslt where no s8 linear layer runs: refused before any work (the model and data need not exist). */
    @Test
    void cublasLtWithoutS8LayersIsRefused() {
        assertRefused("changes only the s8 linear layers, and bench here runs none (add --int8)", "bench", "--model", "shape:minilm",
                "--device", "cuda", "--scheme", "w8a8-sym", "--int8-gemm", "cublaslt", "--batch", "1", "--seq", "8");
        assertRefused("bench here runs none (name a +int8 scheme in --ig-schemes)", "bench", "--model", "shape:minilm", "--device", "cuda",
                "--ig-steps", "4", "--ig-schemes", "fp32,w8a8-sym", "--int8-gemm", "cublaslt");
        assertRefused("eval here runs none", "eval", "--model", "no-such-model", "--data", "no-such-data", "--head", "no-such-head",
                "--int8-gemm", "cublaslt");
        assertRefused("drift here runs none (add --int8)", "drift", "--model", "no-such-model", "--data", "no-such-data", "--task", "sst2",
                "--head", "no-such-head", "--out", "x", "--int8-gemm", "cublaslt");
    }

    @Test
    void trainHeadRefusesTf32() {
        assertRefused("--tf32 is not available here: a head is trained on FP32 features", "train-head", "--model", "no-such-model", "--data",
                "no-such-data", "--tf32", "--out", "x");
    }

    @Test
    void fp16BackwardIsRefusedOnTheCpuAndWithoutGradients() {
        assertRefused("--fp16-backward needs the GPU (--device cuda)", "bench", "--model", "shape:minilm", "--device", "cpu",
                "--fp16-backward", "--ig-steps", "2", "--ig-schemes", "fp32", "--seq", "8", "--runs", "1", "--warmup", "0");
        assertRefused("--fp16-backward changes only the backward's products, and bench without --ig-steps computes no gradients", "bench",
                "--model", "shape:minilm", "--device", "cuda", "--fp16-backward", "--batch", "1", "--seq", "8");
        assertRefused("and eval computes no gradients", "eval", "--model", "no-such-model", "--data", "no-such-data", "--head", "no-such-head",
                "--fp16-backward");
        assertRefused("and outliers computes no gradients", "outliers", "--model", "no-such-model", "--data", "no-such-data", "--out", "x",
                "--fp16-backward");
        assertRefused("and train-head computes no gradients", "train-head", "--model", "no-such-model", "--data", "no-such-data",
                "--fp16-backward", "--out", "x");
    }
}
