package dev.qdrift.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Recognizing results by content, and reading files that lack fields (older writers, trimmed files) without failing. */
class ReportDataTest {
    static final com.fasterxml.jackson.databind.ObjectMapper M = ReportFixtures.MAPPER;

    @Test
    void recognizesEveryKindByItsFields() {
        assertEquals(ReportData.Kind.QUANTIZE_EVAL, kind(M.valueToTree(ReportFixtures.quantizeEval("d.tsv", "h.safetensors", "c.json"))));
        assertEquals(ReportData.Kind.EVAL, kind(M.valueToTree(ReportFixtures.eval("d.tsv"))));
        assertEquals(ReportData.Kind.VERIFY, kind(M.valueToTree(ReportFixtures.verify("d.tsv"))));
        assertEquals(ReportData.Kind.BENCH, kind(M.valueToTree(ReportFixtures.bench())));
        assertEquals(ReportData.Kind.TORCH_BENCH, kind(ReportFixtures.torch()));
        assertEquals(ReportData.Kind.IG_BENCH, kind(M.valueToTree(ReportFixtures.igBench())));
        assertEquals(ReportData.Kind.TORCH_IG_BENCH, kind(ReportFixtures.torchIg()));
        assertEquals(ReportData.Kind.OUTLIERS, kind(ReportFixtures.outliers("d.tsv")));
        assertEquals(ReportData.Kind.DRIFT, kind(ReportFixtures.drift()));
        assertEquals(ReportData.Kind.DEMO, kind(M.valueToTree(ReportFixtures.demo())), "demo.json holds a verification but is a demo");
        assertEquals(ReportData.Kind.CPU_BENCH, kind(M.createObjectNode().put("benchmark", "x").putPOJO("ms_per_call", Map.of("a", 1.0))));
        assertEquals(ReportData.Kind.CPU_BENCH, kind(M.createObjectNode().put("benchmark", "x").putPOJO("ms_per_batch", Map.of("a", 1.0))),
                "the key before 2026-12-06");
        assertEquals(ReportData.Kind.REPORT, kind(M.createObjectNode().put(ReportModel.MARKER, 1)));
        assertEquals(ReportData.Kind.UNKNOWN, kind(M.createObjectNode().put("rows", "x")));
        assertEquals(ReportData.Kind.UNKNOWN, kind(M.createArrayNode()));
    }

    private static ReportData.Kind kind(JsonNode n) {
        return ReportData.classify(n);
    }

    /** demo.json as `make demo` wrote it before the verification record had a backend field. */
    @Test
    void readsAnOlderDemoJsonWithoutTheBackendField(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("demo.json"), """
                { "model" : "builtin:minilm",
                  "data" : { "data" : "builtin:demo", "task" : "sst2", "seed" : "13", "split" : "0.7" },
                  "verify" : { "model" : "builtin:minilm", "data" : "builtin:demo", "n" : 96, "batches" : 3,
                    "maxRelative" : 8.324319482720128E-7, "meanRelative" : 5.248931122343674E-7,
                    "maxRelativeFrobenius" : 2.356128700878702E-6, "worstIndex" : 83, "tolerance" : 1.0E-4,
                    "passed" : true, "truncated" : 0 },
                  "held_out_accuracy" : 0.7604166666666666, "held_out_n" : 96, "head" : "out/demo/head.safetensors" }
                """);
        ReportData d = ReportData.read(dir);
        assertEquals(1, d.demos.size());
        ReportData.DemoRun demo = d.demos.getFirst().value();
        assertNull(demo.verify().backend());
        assertTrue(demo.verify().passed());
        assertEquals(96, demo.heldOutN());
        assertEquals("13", demo.selection().get("seed"));
    }

    /** Outliers with only per-site results: the depth series are rebuilt; without channel ranges, no range chart. */
    @Test
    void outliersWithoutSummaryOrRanges(@TempDir Path dir) throws Exception {
        ObjectNode o = ReportFixtures.outliers("d.tsv");
        o.remove("summary");
        o.withArray("perLayer").forEach(l -> l.withArray("sites").forEach(s -> {
            ((ObjectNode) s).remove("channelMin");
            ((ObjectNode) s).remove("outliers");
        }));
        assertEquals(ReportData.Kind.OUTLIERS, ReportData.classify(o));
        OutlierData d = OutlierData.from(o);
        assertArrayEquals(new double[] {12.5, 271.25}, d.kurtosisByDepth().get("output_residual"));
        assertArrayEquals(new double[] {0.3, 0.3}, d.energyByDepth().get("attention_context"));
        assertTrue(d.layerRows().isEmpty());
        assertNull(d.ranges());
        assertTrue(d.topOutliers().isEmpty());

        M.writeValue(dir.resolve("o.json").toFile(), o);
        ReportModel m = Report.build(ReportData.read(dir), "qdrift");
        assertTrue(m.notShown().stream().anyMatch(s -> s.startsWith("Per-channel ranges")), m.notShown().toString());
        long charts = m.sections().stream().flatMap(s -> s.blocks().stream()).filter(b -> b instanceof ReportModel.Figure).count();
        assertEquals(2, charts, "kurtosis and energy share still drawn");
    }

    /** The site for the range chart: hidden-size, with the strongest outliers; NaN written as a string reads as NaN. */
    @Test
    void rangesComeFromTheSiteWithTheStrongestOutliers() {
        ObjectNode o = ReportFixtures.outliers("d.tsv");
        ((ObjectNode) o.path("summary").path("kurtosisByDepth")).putArray("attention_context").add("NaN").add(2.5);
        OutlierData d = OutlierData.from(o);
        assertEquals("layer.1.output_residual", d.ranges().key());
        assertEquals(3, d.ranges().pegGroups().get("3").length);
        assertArrayEquals(new int[] {3}, d.ranges().outlierChannels());
        assertTrue(Double.isNaN(d.kurtosisByDepth().get("attention_context")[0]));
        assertEquals(30.0 + 1, d.topOutliers().getFirst().overSigma(), "strongest first");
    }

    @Test
    void driftReadsTheAggregateAndKeepsOnlyAttributionRowsThatMatchTheTokens() {
        ObjectNode d = ReportFixtures.drift();
        ObjectNode ex = (ObjectNode) d.withArray("examples").get(0);
        ((ObjectNode) ex.get("attributions")).putArray("peg3").add(1.0);   // 1 value for 9 tokens
        DriftData r = DriftData.from(d);
        assertEquals(java.util.List.of("fp32", "w8a8", "peg3"), r.schemes().stream().map(DriftData.SchemeDrift::scheme).toList());
        assertTrue(r.schemes().getFirst().isReference());
        DriftData.SchemeDrift w8 = r.schemes().get(1), peg = r.schemes().get(2);
        assertEquals(0.6475, w8.meanSpearman(), 1e-12, "from the aggregate's statistics");
        assertEquals(0.7, w8.agreementCiLow(), 1e-12);
        assertEquals(3, w8.flips());
        assertEquals(java.util.Set.of("spearman", "kendall"), w8.metrics().keySet());
        assertEquals(java.util.List.of("FP32 correct", "FP32 incorrect", "<=10 words", ">20 words"),
                w8.groups().stream().map(DriftData.Group::name).toList());
        assertEquals(0.85 + 0.005 * 9.5, peg.meanSpearman(), 1e-12, "no statistics: the mean of the per-example values");
        assertTrue(Double.isNaN(peg.agreement()) && peg.flips() == -1 && peg.groups().isEmpty());
        assertEquals(java.util.List.of("fp32", "w8a8"), java.util.List.copyOf(r.examples().getFirst().attributions().keySet()));
        assertFalse(DriftData.looksLike(M.createObjectNode().put("schemes", 1)));
    }

    /** quantize-eval results written before the calibration was a map (bench/results/2026-11-23-*): still read, the map rebuilt. */
    @Test
    void olderQuantizeEvalWithCalibrationAsAStringAndNoHeadFile(@TempDir Path dir) throws Exception {
        ObjectNode q = M.valueToTree(ReportFixtures.quantizeEval("d.tsv", "builtin:minilm head", null));
        q.put("calibration", "{model=builtin:minilm, data=/work/shared/data/sst2/train.tsv, examples=256}");
        M.writeValue(dir.resolve("q.json").toFile(), q);
        ReportData d = ReportData.read(dir);
        assertEquals(1, d.quantize.size(), d.inputs.toString());
        assertEquals(Map.of("model", "builtin:minilm", "data", "/work/shared/data/sst2/train.tsv", "examples", "256"),
                d.quantize.getFirst().value().calibration());
        Provenance p = Report.build(d, "qdrift").provenance();
        Provenance.FileRef head = p.files().stream().filter(f -> f.role().equals("head")).findFirst().orElseThrow();
        assertEquals("not found here: no hash", head.note(), "a head is never built in, whatever its name");
        assertEquals("none recorded (run without --calibration FILE, or written before results recorded it)", p.calibrations().getFirst().get("file"));
        assertEquals("256", p.calibrations().getFirst().get("examples"));
    }

    @Test
    void aRecognizedFileOfTheWrongShapeIsListedNotFatal(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("q.json"), "{\"rows\": [{\"scheme\": \"w8a8\", \"accuracy\": \"high\"}]}");
        M.writeValue(dir.resolve("v.json").toFile(), ReportFixtures.verify("d.tsv"));
        ReportData d = ReportData.read(dir);
        assertTrue(d.quantize.isEmpty());
        assertEquals(1, d.verifications.size());
        ReportData.Input bad = d.inputs.stream().filter(i -> i.path().equals("q.json")).findFirst().orElseThrow();
        assertEquals(ReportData.Kind.UNKNOWN, bad.kind());
        assertTrue(bad.note().startsWith("looks like quantize-eval but cannot be read"), bad.note());
    }
}
