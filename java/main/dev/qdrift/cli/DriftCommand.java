package dev.qdrift.cli;

import dev.qdrift.experiment.DriftRun;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cuda.CudaBackend;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "drift", mixinStandardHelpOptions = true,
        description = {"Attribution drift: token attributions of the FP32 model and of each quantization scheme's model, word level, "
                + "compared per example (prediction agreement, Spearman, Kendall tau-b, top-k overlap, sign agreement, cosine, "
                + "IG completeness delta, occlusion logit-shift correlation) and aggregated with 95%% bootstrap CIs, by FP32 "
                + "correctness, gold class and sentence length.",
                "Target: the logit of the class the FP32 model predicts on the example, the same class for every scheme. "
                        + "Examples: the held-out side of the head's recorded split of --data, else all of --data; --limit N takes the "
                        + "first N of a seeded class-stratified order (a larger N extends a smaller one). Runs on the CPU.",
                "Writes OUT/run.json, OUT/examples.jsonl (one line per example and scheme) and OUT/aggregate.json. Restarted with "
                        + "the same arguments (--limit may differ) it resumes: finished lines are skipped, a partial last line is redone; "
                        + "with other arguments it refuses."})
final class DriftCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin ReportOption report;

    @Option(names = "--head", required = true, description = "head file written by train-head")
    Path headFile;

    @Option(names = "--schemes", defaultValue = "fp32,w8a8,peg4,mixed,w4a8",
            description = "comma-separated presets or .json scheme files, as quantize-eval; fp32 is the reference and always run (default: ${DEFAULT-VALUE})")
    String schemes;

    @Option(names = "--method", defaultValue = "ig", description = "ig, saliency, gxi or occlusion (default: ${DEFAULT-VALUE})")
    String method;

    @Option(names = "--steps", defaultValue = "50", description = "Integrated Gradients steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--ig-tolerance", description = "IG's adaptive mode: double the steps from --steps until the completeness delta "
            + "|sum of attributions - (F(x) - F(x'))| is at most this (each line records its steps and whether it got there)")
    Double igTolerance;

    @Option(names = "--max-steps", description = "with --ig-tolerance: the most steps a round may take (default: 16 x --steps)")
    Integer maxSteps;

    @Option(names = "--baseline", defaultValue = "pad", description = "IG baseline: pad, zero or mask; special tokens keep their vectors (default: ${DEFAULT-VALUE})")
    String baseline;

    @Option(names = "--rule", defaultValue = "gauss-legendre",
            description = "IG quadrature: gauss-legendre, middle, left, right or trapezoid (default: ${DEFAULT-VALUE})")
    String rule;

    @Option(names = "--straight-through", defaultValue = "ste",
            description = "gradient through fake-quantized activations: ste, or clip-aware (zero where the clamp acted) (default: ${DEFAULT-VALUE})")
    String straightThrough;

    @Option(names = "--calib-size", defaultValue = "256", description = "calibration examples (default: ${DEFAULT-VALUE})")
    int calibSize;

    @Option(names = "--calibration", description = "calibration statistics file: loaded if it exists, else written after calibrating")
    Path calibrationFile;

    @Option(names = "--mixed-budget", defaultValue = "1.0",
            description = "accuracy points below FP32 that 'mixed' may lose on the calibration sample (default: ${DEFAULT-VALUE})")
    double mixedBudget;

    @Mixin DeviceOptions device;

    @Option(names = "--int8", description = "with --device cuda: schemes with 8-bit weights and 8-bit symmetric per-tensor or per-token "
            + "activations run their forward linear layers on the s8 GEMM kernels (others stay simulated, and the run says so)")
    boolean int8;

    @Option(names = "--float32", description = "on the CPU: gradients in float32 on the CPU backend (the GPU's arithmetic, several times "
            + "faster) instead of the float64 reference path (default: float64)")
    boolean float32;

    @Option(names = "--out", required = true, description = "output directory (resumed if it holds this run)")
    Path out;

    @Override
    public Integer call() {
        device.requireS8Layers(int8, "drift", "add --int8");
        try (Backend backend = device.open()) {
            Backend gradients = backend instanceof CudaBackend || float32 ? backend : null; // float32: the CPU backend
            DriftRun.Config config = new DriftRun.Config(model.model, model.maxLength, model.batchSize, headFile.toString(), data.data,
                    data.task, data.split, data.seed, Arrays.asList(schemes.split(",")), method, steps, baseline, rule, straightThrough,
                    calibSize, calibrationFile == null ? null : calibrationFile.toString(), mixedBudget,
                    backend instanceof CudaBackend ? "cuda" : "cpu", int8, device.tf32, device.fp16Backward, device.int8Gemm, igTolerance,
                    maxSteps, float32)
                    .normalized();
            new DriftRun(config, model.load(), System.out, gradients).run(data.limit, out);
        }
        report.writeOver(out);
        return 0;
    }
}
