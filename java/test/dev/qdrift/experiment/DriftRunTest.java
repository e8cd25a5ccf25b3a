package dev.qdrift.experiment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.head.LinearHead;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.apache.commons.math3.stat.correlation.PearsonsCorrelation;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * A drift run on builtin:minilm with a random 2-class head (weights N(0, 0.05^2), mean pooling) on 6
 * examples of the SST-2 dev fixture, IG with 4 Gauss–Legendre steps, schemes fp32, w8a8 and w4a8:
 * killed and restarted in every way a run can be — a shorter --limit first, a partial last line, a
 * kill between an example's schemes — it ends with exactly one line per (example, scheme), the redone
 * lines equal to what an uninterrupted run writes; other arguments are refused.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DriftRunTest {
    private static final String DATA = "java/test-resources/fixtures/sst2-dev-first100.tsv";
    private static final List<String> SCHEMES = List.of("fp32", "w8a8", "w4a8");

    @TempDir static Path tmp;
    private static Model model;
    private static Path head;
    private static Path dir;
    private static Map<String, DriftRecord> complete;

    @BeforeAll
    static void setUp() {
        model = ModelLoader.load("builtin:minilm", 64);
        Random r = new Random(5);
        float[][] w = new float[2][384];
        for (float[] row : w) for (int j = 0; j < row.length; j++) row[j] = (float) (0.05 * r.nextGaussian());
        head = tmp.resolve("head.safetensors");
        new LinearHead(w, new float[] {0.01f, -0.01f}, List.of("negative", "positive"), "mean", Map.of()).save(head);
        dir = tmp.resolve("run");
    }

    private static DriftRun.Config config(int steps, String schemes) {
        return new DriftRun.Config("builtin:minilm", 64, 8, head.toString(), DATA, "sst2", null, 13, List.of(schemes.split(",")), "ig", steps,
                "pad", "gauss-legendre", "ste", 16, tmp.resolve("calib.json").toString(), 1.0, "cpu", false, false, false, null, null, null, false);
    }

    private static DriftRun.Outcome run(int steps, String schemes, Integer limit) {
        return new DriftRun(config(steps, schemes), model, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), null)
                .run(limit, dir);
    }

    private static List<String> lines() throws IOException {
        return Files.readAllLines(dir.resolve(DriftRun.EXAMPLES_FILE));
    }

    /** Every line parses, no (example, scheme) twice, and every example of the first `examples` ranks has every scheme. */
    private static void checkComplete(int examples) throws IOException {
        List<String> lines = lines();
        assertEquals(examples * SCHEMES.size(), lines.size(), "lines");
        Set<String> keys = new HashSet<>();
        Set<Integer> ranks = new HashSet<>();
        for (String l : lines) {
            DriftRecord r = DriftLog.MAPPER.readValue(l, DriftRecord.class);
            assertTrue(keys.add(DriftLog.key(r.example(), r.scheme())), "duplicate " + r.example() + "/" + r.scheme());
            ranks.add(r.rank());
        }
        for (int rank = 0; rank < examples; rank++) assertTrue(ranks.contains(rank), "rank " + rank);
    }

    @Test
    @Order(1)
    void limitThreeThenSix() throws IOException {
        DriftRun.Outcome first = run(4, "fp32,w8a8,w4a8", 3);
        assertEquals(9, first.linesWritten());
        checkComplete(3);
        DriftRun.Outcome second = run(4, "w8a8,w4a8", 6);   // fp32 is added first whether named or not: the same run
        assertEquals(9, second.linesWritten());
        assertEquals(9, second.linesSkipped());
        checkComplete(6);
        complete = DriftLog.read(dir.resolve(DriftRun.EXAMPLES_FILE), false).records();

        JsonNode agg = DriftLog.MAPPER.readTree(dir.resolve(DriftRun.AGGREGATE_FILE).toFile());
        assertEquals("qdrift-drift", agg.path("kind").asText());
        assertTrue(agg.path("device").asText().startsWith("cpu ("), agg.path("device").asText());
        assertEquals(6, agg.path("n").asInt());
        assertEquals(3, agg.path("schemes").size());
        for (JsonNode s : agg.path("schemes")) {
            assertEquals(6, s.path("n").asInt());
            assertEquals(6, s.path("byLength").path("<=10").path("n").asInt() + s.path("byLength").path("11-20").path("n").asInt()
                    + s.path("byLength").path(">20").path("n").asInt());
            assertTrue(s.path("all").path("absDelta").path("mean").isNumber());
        }
        JsonNode fp32 = agg.path("schemes").get(0);
        assertEquals("fp32", fp32.path("scheme").asText());
        assertEquals(1.0, fp32.path("agreement").asDouble());
        assertEquals(1.0, fp32.path("all").path("metrics").path("spearman").path("mean").asDouble(), 1e-12);
        assertEquals(6, agg.path("examples").size());

        // Lines are what they claim: the target is the FP32 prediction's logit, IG's fields add up.
        for (DriftRecord r : complete.values()) {
            assertEquals(r.fp32Predicted(), r.targetClass());
            assertEquals(r.fp32Predicted(), DriftRun.argmax(complete.get(DriftLog.key(r.example(), "fp32")).logits()));
            assertEquals(r.wordTexts().size(), r.scores().length);
            assertEquals(r.words(), r.scores().length);
            assertEquals(r.predicted() == r.fp32Predicted(), r.agree());
            assertEquals(r.logits()[r.targetClass()], r.targetLogit(), 0);
            assertEquals(r.targetLogit(), r.targetAtInput(), 1e-12, "IG's F(x) is the target logit");
            double sum = 0;
            for (double v : r.scores()) sum += v;
            assertEquals(r.targetAtInput() - r.targetAtBaseline(), sum - r.delta(), 1e-9, "delta = sum of attributions - (F(x) - F(x'))");
            if (r.scheme().equals("fp32")) assertEquals(r.delta(), r.fp32Delta());
        }
        // The same example's quantized line explains the same class with the same words.
        DriftRecord f = complete.values().stream().filter(r -> r.scheme().equals("fp32")).findFirst().orElseThrow();
        DriftRecord q = complete.get(DriftLog.key(f.example(), "w4a8"));
        assertEquals(f.targetClass(), q.targetClass());
        assertEquals(f.wordTexts(), q.wordTexts());
    }

    @Test
    @Order(2)
    void partialLastLineIsRedone() throws IOException {
        Path file = dir.resolve(DriftRun.EXAMPLES_FILE);
        List<String> lines = lines();
        String last = lines.getLast();
        DriftRecord lastRecord = DriftLog.MAPPER.readValue(last, DriftRecord.class);
        // What a kill in the middle of the last write leaves: the line's first half, no newline.
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < lines.size() - 1; i++) b.append(lines.get(i)).append('\n');
        b.append(last, 0, last.length() / 2);
        Files.writeString(file, b.toString());

        DriftRun.Outcome o = run(4, "fp32,w8a8,w4a8", 6);
        assertTrue(o.droppedBytes() > 0);
        assertEquals(1, o.linesWritten());
        checkComplete(6);
        DriftRecord redone = DriftLog.MAPPER.readValue(lines().getLast(), DriftRecord.class);
        assertEquals(lastRecord.example(), redone.example());
        assertEquals(lastRecord.scheme(), redone.scheme());
        assertArrayEquals(lastRecord.scores(), redone.scores(), 0.0, "the redone line equals the original");
    }

    @Test
    @Order(3)
    void killBetweenSchemesRedoesTheRestFromTheWrittenFp32Line() throws IOException {
        Path file = dir.resolve(DriftRun.EXAMPLES_FILE);
        List<String> lines = lines();
        // The last example: keep its fp32 line, drop the quantized ones (killed after writing fp32).
        int example = DriftLog.MAPPER.readValue(lines.getLast(), DriftRecord.class).example();
        List<String> kept = new ArrayList<>();
        for (String l : lines) {
            DriftRecord r = DriftLog.MAPPER.readValue(l, DriftRecord.class);
            if (r.example() != example || r.scheme().equals("fp32")) kept.add(l);
        }
        assertEquals(lines.size() - 2, kept.size());
        Files.writeString(file, String.join("\n", kept) + "\n");

        DriftRun.Outcome o = run(4, "fp32,w8a8,w4a8", 6);
        assertEquals(2, o.linesWritten());
        checkComplete(6);
        Map<String, DriftRecord> now = DriftLog.read(file, false).records();
        for (String s : List.of("w8a8", "w4a8")) {
            DriftRecord before = complete.get(DriftLog.key(example, s)), after = now.get(DriftLog.key(example, s));
            assertArrayEquals(before.scores(), after.scores(), 0.0);
            assertEquals(before.spearman(), after.spearman());
            assertEquals(before.fp32Delta(), after.fp32Delta());
        }
    }

    @Test
    @Order(4)
    void finishedRunIsNotRedone() throws IOException {
        long size = Files.size(dir.resolve(DriftRun.EXAMPLES_FILE));
        DriftRun.Outcome o = run(4, "fp32,w8a8,w4a8", 6);
        assertEquals(0, o.linesWritten());
        assertEquals(size, Files.size(dir.resolve(DriftRun.EXAMPLES_FILE)));
        // A smaller --limit aggregates its own selection from the same file.
        DriftRun.Outcome three = run(4, "fp32,w8a8,w4a8", 3);
        assertEquals(0, three.linesWritten());
        assertEquals(3, three.aggregate().n());
        checkComplete(6);
    }

    /** A run.json written before the device, int8, tf32, int8Gemm, adaptive-IG and float32 arguments existed is the same run on the CPU: it resumes. */
    @Test
    @Order(5)
    void runFileWithoutTheLaterArgumentsResumes() throws IOException {
        Path runFile = dir.resolve(DriftRun.RUN_FILE);
        String original = Files.readString(runFile);
        com.fasterxml.jackson.databind.node.ObjectNode run = (com.fasterxml.jackson.databind.node.ObjectNode) DriftLog.MAPPER.readTree(original);
        ((com.fasterxml.jackson.databind.node.ObjectNode) run.get("arguments")).remove(List.of("device", "int8", "tf32", "int8Gemm", "igTolerance", "maxSteps",
                "float32"));
        Files.writeString(runFile, DriftLog.MAPPER.writeValueAsString(run));
        try {
            assertEquals(0, run(4, "fp32,w8a8,w4a8", 6).linesWritten());
        } finally {
            Files.writeString(runFile, original);
        }
    }

    @Test
    void gpuOnlyOptionsAreRefusedOnTheCpu() {
        for (boolean int8 : new boolean[] {true, false}) {
            DriftRun.Config c = new DriftRun.Config("builtin:minilm", 64, 8, head.toString(), DATA, "sst2", null, 13, List.of("fp32"), "ig", 4,
                    "pad", "gauss-legendre", "ste", 16, null, 1.0, "cpu", int8, !int8, false, null, null, null, false);
            QdriftException e = assertThrows(QdriftException.class, c::normalized);
            assertTrue(e.getMessage().contains(int8 ? "--int8 needs --device cuda" : "--tf32 needs --device cuda"), e.getMessage());
        }
        java.util.function.BiFunction<String, String, DriftRun.Config> fp16 = (device, method) -> new DriftRun.Config("builtin:minilm", 64, 8,
                head.toString(), DATA, "sst2", null, 13, List.of("fp32"), method, 4, "pad", "gauss-legendre", "ste", 16, null, 1.0, device,
                false, false, true, null, null, null, false);
        QdriftException cpu = assertThrows(QdriftException.class, () -> fp16.apply("cpu", "ig").normalized());
        assertTrue(cpu.getMessage().contains("--fp16-backward needs --device cuda"), cpu.getMessage());
        QdriftException occlusion = assertThrows(QdriftException.class, () -> fp16.apply("cuda", "occlusion").normalized());
        assertTrue(occlusion.getMessage().contains("occlusion computes none"), occlusion.getMessage());
        assertTrue(fp16.apply("cuda", "ig").normalized().fp16Backward(), "kept on the GPU");
    }

    /**
     * --float32: the same run's gradients on the CPU backend in float32 follow the float64 path's. FP32's lines: the same
     * prediction, and per line the largest difference of a word's score at most 1e-4 of the largest |score| (float32's
     * rounding through 6 layers and 4 IG steps: ~1e-6 seen). w8a8's lines are only checked to be there and complete:
     * MiniLM's per-tensor 8-bit activations put many values near a step of their grid, so float32's rounding moves some to
     * the next step and the logits apart (0.04 seen on this head's logits of ~0.05); BackendGradientsTest checks the
     * quantized float32 gradients against float64 on a model where that does not happen.
     */
    @Test
    @Order(2)
    void float32OnTheCpuBackendFollowsTheFloat64Path() {
        DriftRun.Config f64 = config(4, "fp32,w8a8,w4a8");
        DriftRun.Config c = new DriftRun.Config(f64.model(), f64.maxLength(), f64.batchSize(), f64.head(), f64.data(), f64.task(), f64.split(),
                f64.seed(), List.of("fp32", "w8a8"), f64.method(), f64.steps(), f64.baseline(), f64.rule(), f64.straightThrough(),
                f64.calibSize(), null, f64.mixedBudget(), f64.device(), false, false, false, null, null, null, true); // calibrated on `cpu`
        Path out = tmp.resolve("float32");
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        try (CpuBackend cpu = new CpuBackend()) {
            DriftRun.Outcome o = new DriftRun(c, model, quiet, cpu).run(3, out);
            assertEquals(6, o.linesWritten());
            assertTrue(o.aggregate().method().contains("gradients in float32 on the CPU backend"), o.aggregate().method());
            Map<String, DriftRecord> recs = DriftLog.read(out.resolve(DriftRun.EXAMPLES_FILE), false).records();
            assertEquals(6, recs.size());
            double differs = 0; // the float32 path ran: its scores are not float64's to the bit
            for (DriftRecord r : recs.values()) {
                DriftRecord ref = complete.get(DriftLog.key(r.example(), r.scheme()));
                assertEquals(ref.wordTexts(), r.wordTexts());
                if (!r.scheme().equals("fp32")) continue;
                assertEquals(ref.predicted(), r.predicted(), "example " + r.example());
                double worst = 0, scale = 0;
                for (int i = 0; i < r.scores().length; i++) {
                    worst = Math.max(worst, Math.abs(r.scores()[i] - ref.scores()[i]));
                    scale = Math.max(scale, Math.abs(ref.scores()[i]));
                }
                assertTrue(worst <= 1e-4 * scale, "example " + r.example() + ": scores differ by " + worst + ", largest |score| " + scale);
                differs = Math.max(differs, worst);
            }
            assertTrue(differs > 0, "float32 scores equal to float64's bit for bit: the float64 path ran");
        }
        assertThrows(IllegalArgumentException.class, () -> new DriftRun(c, model, quiet, null), "float32 without a CPU backend");
    }

    @Test
    void float32IsRefusedWithOcclusionAndDroppedOnTheGpu() {
        java.util.function.BiFunction<String, String, DriftRun.Config> f32 = (device, method) -> new DriftRun.Config("builtin:minilm", 64, 8,
                head.toString(), DATA, "sst2", null, 13, List.of("fp32"), method, 4, "pad", "gauss-legendre", "ste", 16, null, 1.0, device,
                false, false, false, null, null, null, true);
        assertFalse(f32.apply("cuda", "ig").normalized().float32(), "the GPU's gradients are float32: not a different run");
        QdriftException occlusion = assertThrows(QdriftException.class, () -> f32.apply("cpu", "occlusion").normalized());
        assertTrue(occlusion.getMessage().contains("occlusion computes none"), occlusion.getMessage());
        assertTrue(f32.apply("cpu", "saliency").normalized().float32());
    }

    /** --int8-gemm: ours by default, spelled canonically; cublaslt only with --int8; anything else named. */
    @Test
    void int8GemmIsChecked() {
        java.util.function.BiFunction<String, Boolean, DriftRun.Config> config = (gemm, int8) -> new DriftRun.Config("builtin:minilm", 64, 8,
                head.toString(), DATA, "sst2", null, 13, List.of("fp32"), "ig", 4, "pad", "gauss-legendre", "ste", 16, null, 1.0, "cuda", int8,
                false, false, gemm, null, null, false);
        assertEquals("ours", config.apply(null, false).normalized().int8Gemm());
        assertEquals("cublaslt", config.apply(" CuBLASLt ", true).normalized().int8Gemm());
        QdriftException without = assertThrows(QdriftException.class, () -> config.apply("cublaslt", false).normalized());
        assertTrue(without.getMessage().contains("add --int8"), without.getMessage());
        QdriftException unknown = assertThrows(QdriftException.class, () -> config.apply("cutlass", true).normalized());
        assertTrue(unknown.getMessage().contains("unknown --int8-gemm 'cutlass'"), unknown.getMessage());
        assertTrue(config.apply("cublaslt", true).normalized().describeMethod().contains("cuBLASLt"));
        assertFalse(config.apply("ours", true).normalized().describeMethod().contains("cuBLASLt"));
    }

    @Test
    @Order(5)
    void otherArgumentsAreRefused() throws IOException {
        long size = Files.size(dir.resolve(DriftRun.EXAMPLES_FILE));
        QdriftException steps = assertThrows(QdriftException.class, () -> run(8, "fp32,w8a8,w4a8", 6));
        assertTrue(steps.getMessage().contains("steps was 4, now 8"), steps.getMessage());
        QdriftException schemes = assertThrows(QdriftException.class, () -> run(4, "fp32,w8a8", 6));
        assertTrue(schemes.getMessage().contains("schemes"), schemes.getMessage());
        assertEquals(size, Files.size(dir.resolve(DriftRun.EXAMPLES_FILE)), "a refused run writes nothing");
        assertFalse(Files.readString(dir.resolve(DriftRun.RUN_FILE)).contains("\"steps\" : 8"));
    }

    @Test
    @Order(6)
    void changedHeadIsRefused() {
        Random r = new Random(6);
        float[][] w = new float[2][384];
        for (float[] row : w) for (int j = 0; j < row.length; j++) row[j] = (float) (0.05 * r.nextGaussian());
        new LinearHead(w, new float[] {0, 0}, List.of("negative", "positive"), "mean", Map.of()).save(head);
        QdriftException e = assertThrows(QdriftException.class, () -> run(4, "fp32,w8a8,w4a8", 6));
        assertTrue(e.getMessage().contains("hash of head"), e.getMessage());
    }

    /** --ig-tolerance: each line's steps double from --steps until |delta| <= tolerance or --max-steps; recorded per line. */
    @Test
    @Order(8)
    void adaptiveIntegratedGradients() throws IOException {
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        double tolerance = 0.05;
        DriftRun.Config c = new DriftRun.Config("builtin:minilm", 64, 8, head.toString(), DATA, "sst2", null, 13, List.of("fp32", "w8a8"),
                "ig", 2, "pad", "gauss-legendre", "ste", 16, null, 1.0, "cpu", false, false, false, null, tolerance, 8, false);
        Path out = tmp.resolve("adaptive");
        DriftRun.Outcome o = new DriftRun(c, model, quiet, null).run(3, out);
        assertEquals(6, o.linesWritten());
        int converged = 0;
        for (DriftRecord rec : DriftLog.read(out.resolve(DriftRun.EXAMPLES_FILE), false).records().values()) {
            assertTrue(List.of(2, 4, 8).contains(rec.igSteps()), "steps " + rec.igSteps());
            assertTrue(rec.converged() != null);
            if (rec.converged()) {
                converged++;
                assertTrue(Math.abs(rec.delta()) <= tolerance, "converged with |delta| " + rec.delta());
            } else {
                assertEquals(8, rec.igSteps(), "a line that did not converge ran to --max-steps");
                assertTrue(Math.abs(rec.delta()) > tolerance);
            }
        }
        assertTrue(converged > 0, "the FP32 model's IG converges at this tolerance");
        for (DriftAggregate.SchemeResult sr : o.aggregate().schemes()) {
            assertTrue(sr.all().converged() != null && sr.all().igSteps().mean() >= 2 && sr.all().igSteps().mean() <= 8, sr.scheme());
        }
        assertEquals(converged / 6.0, (o.aggregate().schemes().get(0).all().converged() + o.aggregate().schemes().get(1).all().converged()) / 2,
                1e-12, "the converged shares are the lines'");
        assertTrue(Files.readString(out.resolve(DriftRun.RUN_FILE)).contains("\"igTolerance\" : 0.05"), "the run records its tolerance");
    }

    @Test
    void adaptiveOptionsAreChecked() {
        record Bad(String method, Double tolerance, Integer max, String message) {}
        for (Bad b : List.of(new Bad("occlusion", 0.01, null, "use it with --method ig"), new Bad("ig", -1.0, null, "must be positive"),
                new Bad("ig", 0.01, 2, "below --steps 4"), new Bad("ig", null, 16, "give --ig-tolerance too"))) {
            DriftRun.Config c = new DriftRun.Config("builtin:minilm", 64, 8, head.toString(), DATA, "sst2", null, 13, List.of("fp32"), b.method(),
                    4, "pad", "gauss-legendre", "ste", 16, null, 1.0, "cpu", false, false, false, null, b.tolerance(), b.max(), false);
            QdriftException e = assertThrows(QdriftException.class, c::normalized);
            assertTrue(e.getMessage().contains(b.message()), e.getMessage());
        }
    }

    /** Occlusion: the drop of the target logit is the logit shift; FP32's shifts correlate perfectly with themselves. */
    @Test
    @Order(7)
    void occlusionAndSaliency() throws IOException {
        Path h = tmp.resolve("head2.safetensors");
        Random r = new Random(7);
        float[][] w = new float[2][384];
        for (float[] row : w) for (int j = 0; j < row.length; j++) row[j] = (float) (0.05 * r.nextGaussian());
        new LinearHead(w, new float[] {0, 0}, List.of("negative", "positive"), "mean", Map.of()).save(h);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        for (String method : List.of("occlusion", "saliency", "gxi")) {
            DriftRun.Config c = new DriftRun.Config("builtin:minilm", 64, 8, h.toString(), DATA, "sst2", null, 13, List.of("fp32", "w8a8"),
                    method, 1, "pad", "gauss-legendre", "ste", 16, null, 1.0, "cpu", false, false, false, null, null, null, false);
            Path out = tmp.resolve(method);
            DriftRun.Outcome o = new DriftRun(c, model, quiet, null).run(2, out);
            assertEquals(4, o.linesWritten());
            Map<String, DriftRecord> recs = DriftLog.read(out.resolve(DriftRun.EXAMPLES_FILE), false).records();
            for (DriftRecord rec : recs.values()) {
                assertEquals(null, rec.delta());
                if (method.equals("occlusion")) {
                    assertArrayEquals(rec.scores(), rec.logitShift(), 1e-12, "target = a logit: drop = logit shift");
                    double[] ref = recs.get(DriftLog.key(rec.example(), "fp32")).logitShift();
                    assertEquals(new PearsonsCorrelation().correlation(ref, rec.logitShift()), rec.logitShiftCorrelation(), 1e-12);
                    if (rec.scheme().equals("fp32")) assertEquals(1.0, rec.logitShiftCorrelation(), 1e-12);
                } else {
                    assertEquals(null, rec.logitShift());
                    if (method.equals("saliency")) for (double v : rec.scores()) assertTrue(v >= 0);
                }
            }
            DriftAggregate.Group all = o.aggregate().schemes().get(1).all();
            assertEquals(method.equals("occlusion"), all.logitShiftCorrelation() != null);
            assertEquals(null, all.absDelta());
        }
    }
}
