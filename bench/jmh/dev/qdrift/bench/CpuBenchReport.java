package dev.qdrift.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.LinkedHashMap;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link EncoderForwardBench} and prints our figure next to ONNX Runtime's from the same run, as
 * sentences/s and a ratio; writes bench/results/cpu-encoder-DATE.json with the machine description.
 */
public final class CpuBenchReport {
    public static void main(String[] args) throws Exception {
        Map<String, Double> msPerBatch = new LinkedHashMap<>();
        Map<String, Double> errorMs = new LinkedHashMap<>();
        for (RunResult r : new Runner(new OptionsBuilder().include(EncoderForwardBench.class.getSimpleName()).build()).run()) {
            String name = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            msPerBatch.put(name, r.getPrimaryResult().getScore());
            errorMs.put(name, r.getPrimaryResult().getScoreError());
        }
        double ours = msPerBatch.get("qdriftCpu"), ort = msPerBatch.get("onnxRuntime");
        double perSecond = EncoderForwardBench.BATCH * 1000.0;
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                .findFirst().map(l -> l.replaceAll(".*:\\s*", "")).orElse("unknown");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("benchmark", "MiniLM-L6 encoder forward, batch 32 x seq 128, FP32");
        out.put("device", "cpu: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores");
        out.put("date", LocalDate.now().toString());
        out.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        out.put("ms_per_batch", msPerBatch);
        out.put("ms_error_99.9", errorMs);
        out.put("sentences_per_s", Map.of("qdrift_cpu", perSecond / ours, "onnxruntime", perSecond / ort));
        out.put("ratio_qdrift_over_onnxruntime", ort / ours);
        Path file = Path.of("bench/results/cpu-encoder-" + LocalDate.now() + ".json");
        Files.createDirectories(file.getParent());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), out);
        System.out.printf("%n%-14s %10s %12s%n", "", "ms/batch", "sentences/s");
        System.out.printf("%-14s %10.1f %12.1f%n", "qdrift cpu", ours, perSecond / ours);
        System.out.printf("%-14s %10.1f %12.1f%n", "onnxruntime", ort, perSecond / ort);
        System.out.printf("ratio (qdrift / onnxruntime throughput): %.2fx   -> %s%n", ort / ours, file);
    }
}
