package dev.qdrift.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs the CPU benchmarks and prints our figure next to the reference's from the same run, as a rate and a ratio;
 * writes bench/results/cpu-NAME-DATE.json with the machine description. Arguments: the comparisons to run
 * (encoder, ig; default both).
 */
public final class CpuBenchReport {
    /** A benchmark class's two methods, ours and the reference, and what one call of them is worth in `unit`s. */
    private record Comparison(String name, Class<?> benchmark, String description, String ours, String reference, String referenceName,
                              String unit, double unitsPerCall) {}

    private static final List<Comparison> COMPARISONS = List.of(
            new Comparison("encoder", EncoderForwardBench.class, "MiniLM-L6 encoder forward, batch 32 x seq 128, FP32", "qdriftCpu",
                    "onnxRuntime", "onnxruntime", "sentences/s", EncoderForwardBench.BATCH),
            new Comparison("ig", IntegratedGradientsBench.class, "MiniLM-L6 + SST-2 probe, Integrated Gradients (" + IntegratedGradientsBench.STEPS
                    + " Gauss-Legendre steps) of one SST-2 sentence: the float32 path on the CPU backend vs the float64 reference path",
                    "float32CpuBackend", "float64Reference", "float64 reference", "attributions/s", 1));

    public static void main(String[] args) throws Exception {
        List<String> wanted = List.of(args);
        List<String> known = COMPARISONS.stream().map(Comparison::name).toList();
        for (String w : wanted) if (!known.contains(w)) throw new IllegalArgumentException("unknown benchmark '" + w + "': use " + known);
        for (Comparison c : COMPARISONS) if (wanted.isEmpty() || wanted.contains(c.name())) run(c);
    }

    private static void run(Comparison c) throws Exception {
        Map<String, Double> ms = new LinkedHashMap<>();
        Map<String, Double> errorMs = new LinkedHashMap<>();
        for (RunResult r : new Runner(new OptionsBuilder().include(c.benchmark().getSimpleName()).build()).run()) {
            String name = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            ms.put(name, r.getPrimaryResult().getScore());
            errorMs.put(name, r.getPrimaryResult().getScoreError());
        }
        double ours = ms.get(c.ours()), ref = ms.get(c.reference());
        double perSecond = c.unitsPerCall() * 1000.0;
        String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                .findFirst().map(l -> l.replaceAll(".*:\\s*", "")).orElse("unknown");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("benchmark", c.description());
        out.put("device", "cpu: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores");
        out.put("date", LocalDate.now().toString());
        out.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        out.put("ms_per_call", ms);
        out.put("ms_error_99.9", errorMs);
        out.put(c.unit(), Map.of(c.ours(), perSecond / ours, c.reference(), perSecond / ref));
        out.put("ratio_ours_over_reference", ref / ours);
        Path file = Path.of("bench/results/cpu-" + c.name() + "-" + LocalDate.now() + ".json");
        Files.createDirectories(file.getParent());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), out);
        System.out.printf("%n%s%n%-20s %10s %16s%n", c.description(), "", "ms/call", c.unit());
        System.out.printf("%-20s %10.1f %16.2f%n", "qdrift " + c.ours(), ours, perSecond / ours);
        System.out.printf("%-20s %10.1f %16.2f%n", c.referenceName(), ref, perSecond / ref);
        System.out.printf("ratio (ours / %s throughput): %.2fx   -> %s%n", c.referenceName(), ref / ours, file);
    }
}
