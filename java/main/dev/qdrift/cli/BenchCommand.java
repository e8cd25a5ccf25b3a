package dev.qdrift.cli;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.experiment.IgBench;
import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.RandomWeights;
import dev.qdrift.quant.Scheme;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Encoder forward latency, throughput and peak memory per batch size (CUDA-event timed on the GPU).")
final class BenchCommand implements Callable<Integer> {
    @Mixin DeviceOptions device;
    @Mixin ReportOption report;

    @Option(names = "--model", defaultValue = "shape:bert-base",
            description = "a model (as elsewhere) or shape:bert-base|shape:minilm|shape:bge-small for seeded random weights of that shape (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--batch", split = ",", defaultValue = "1,32,128", description = "batch sizes (default: ${DEFAULT-VALUE})")
    int[] batches;

    @Option(names = "--seq", defaultValue = "128", description = "tokens per sequence (default: ${DEFAULT-VALUE})")
    int seq;

    @Option(names = "--runs", defaultValue = "50", description = "timed forwards per batch size (default: ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--warmup", defaultValue = "5", description = "untimed forwards first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--scheme", defaultValue = "fp32", description = "a quantization scheme (calibrated on random ids) (default: ${DEFAULT-VALUE})")
    String scheme;

    @Option(names = "--int8", description = "execute the scheme's linear layers on the s8 GEMM kernels (CUDA; w8a8-sym or w8a8-pt)")
    boolean int8;

    @Option(names = "--ig-steps", description = "benchmark Integrated Gradients instead of the forward: one IG of this many steps per "
            + "sequence (all steps in one batch, --seq tokens), for --ig-schemes")
    Integer igSteps;

    @Option(names = "--ig-schemes", split = ",", defaultValue = "fp32,w8a8-sym,w8a8-sym+int8",
            description = "schemes for --ig-steps; +int8 runs the forward's linear layers on the s8 kernels, +tf32 runs as --tf32 "
                    + "does, the FP32 products and attention on TF32 tensor cores, +fp16 runs the backward's input-gradient products with "
                    + "FP16 operands (the seed scaled into FP16's range; an overflowing pass reruns with FP32 operands) (each such IG's difference "
                    + "from true FP32 is printed) (default: ${DEFAULT-VALUE})")
    List<String> igSchemes;

    @Option(names = "--json", description = "write the results as JSON here")
    Path json;

    @Override
    public Integer call() {
        device.requireS8Layers(igSteps == null ? int8 : IgBench.anyOnS8Kernels(igSchemes), "bench",
                igSteps == null ? "add --int8" : "name a +int8 scheme in --ig-schemes");
        if (igSteps == null) device.refuseFp16Backward("bench without --ig-steps");
        report.requireOutput(json, "--json FILE");
        if (runs < 1 || warmup < 0 || seq < 2 || Arrays.stream(batches).anyMatch(b -> b < 1))
            throw new QdriftException("--runs, --seq and --batch must be positive");
        BertWeights w = model.startsWith("shape:") ? RandomWeights.generate(RandomWeights.shape(model.substring(6)), 42, false)
                : ModelLoader.load(model).weights();
        try (Backend backend = device.open()) {
            if (igSteps != null) integratedGradients(w, backend);
            else forwards(w, backend);
        }
        report.writeOver(json);
        return 0;
    }

    private void forwards(BertWeights w, Backend backend) {
        LatencyBench.Result r = LatencyBench.run(model, w, backend, batches, seq, warmup, runs, Scheme.parse(scheme), int8);
        System.out.printf("model %s, %s, on %s (%s of %d forwards after %d warm-up)%n", r.model(), r.scheme(), r.device(), r.timing(), runs, warmup);
        System.out.printf("%6s %5s %11s %11s %12s %11s %10s %14s %11s%n", "batch", "seq", "median ms", "p90 ms", "sentences/s",
                "compute ms", "graph ms", "pool peak MiB", "device MiB");
        for (LatencyBench.Row row : r.rows())
            System.out.printf("%6d %5d %11.2f %11.2f %12.1f %11s %10s %14s %11s%n", row.batch(), row.seq(), row.medianMs(), row.p90Ms(),
                    row.sentencesPerS(), ms(row.computeMs()), ms(row.graphMs()), mib(row.poolPeakBytes()), mib(row.deviceUsedBytes()));
        System.out.println("median ms: ids up, forward, pooled embeddings down; compute ms: forward on device-resident inputs; "
                + "graph ms: that forward replayed as one CUDA graph");
        if (json != null) Json.write(json, r);
    }

    private void integratedGradients(BertWeights w, Backend backend) {
        if (igSteps < 1) throw new QdriftException("--ig-steps must be positive");
        IgBench.Result r = IgBench.run(model, w, backend, igSchemes, igSteps, seq, warmup, runs);
        System.out.printf("model %s, IG-%d at seq %d on %s (%s of %d after %d warm-up)%n", r.model(), igSteps, seq, r.device(), r.timing(), runs,
                warmup);
        System.out.printf("%-34s %11s %9s %8s %9s %9s %14s %15s %12s%n", "scheme", "ms per IG", "p90 ms", "seq/s", "GFLOP", "TFLOPS",
                "pool peak MiB", "graph peak MiB", "vs FP32 IG");
        for (IgBench.Row row : r.rows())
            System.out.printf("%-34s %11.2f %9.2f %8.2f %9.1f %9.2f %14s %15s %12s%n", row.scheme(), row.msPerIg(), row.p90Ms(),
                    row.sequencesPerS(), row.gflop(), row.tflops(), mib(row.poolPeakBytes()), mib(row.graphPeakBytes()),
                    row.tf32Error() == null ? "-" : String.format("%.1e", row.tf32Error()));
        if (json != null) Json.write(json, r);
    }

    private static String ms(Double v) {
        return v == null ? "-" : String.format("%.2f", v);
    }

    private static String mib(Long bytes) {
        return bytes == null ? "-" : String.format("%.1f", bytes / 1048576.0);
    }
}
