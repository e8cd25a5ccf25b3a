package dev.qdrift.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.experiment.IgBench;
import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.Verification;
import dev.qdrift.quant.MixedPrecision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A results directory with one small, hand-made file of every kind the report reads. Results that
 * qdrift writes from records are written from those records (as the commands do, through Jackson),
 * so a renamed record field breaks these tests rather than the report in the field. The outliers
 * file is written as JSON with the field names of {@code Outliers.Result}: that record is still
 * changing, and the report reads it leniently ({@link OutliersReportTest} runs the real writer).
 * Deliberately odd file names: the report must recognize results by content.
 */
final class ReportFixtures {
    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    static final String DATA_TEXT = "sentence\tlabel\na fine film .\t1\na dull film .\t0\n";
    /** Stand-ins for a head and a calibration file: the report only names and hashes them. */
    static final String HEAD_BYTES = "not a real head", CALIBRATION_BYTES = "{\"provenance\": {}, \"sites\": {}}";

    private ReportFixtures() {}

    /** Writes every kind into dir (and the data, head and calibration files the results name, and two files that are not results). */
    static void writeAll(Path dir) throws IOException {
        Files.createDirectories(dir.resolve("nested/deeper"));
        Files.createDirectories(dir.resolve("ig"));
        Path data = dir.resolve("data.tsv"), head = dir.resolve("head.safetensors"), calib = dir.resolve("minilm.calib.json");
        Files.writeString(data, DATA_TEXT);
        Files.writeString(head, HEAD_BYTES);
        Files.writeString(calib, CALIBRATION_BYTES);

        MAPPER.writeValue(dir.resolve("q-run-1.json").toFile(), quantizeEval(data.toString(), head.toString(), calib.toString()));
        MAPPER.writeValue(dir.resolve("nested/scores.json").toFile(), eval(data.toString()));
        MAPPER.writeValue(dir.resolve("check.json").toFile(), verify(data.toString()));
        MAPPER.writeValue(dir.resolve("nested/deeper/timings.json").toFile(), bench());
        MAPPER.writeValue(dir.resolve("nested/deeper/timings-int8.json").toFile(), benchInt8());
        MAPPER.writeValue(dir.resolve("nested/deeper/torch-minilm.json").toFile(), torch());
        MAPPER.writeValue(dir.resolve("ig/ig-bert-base.json").toFile(), igBench());
        MAPPER.writeValue(dir.resolve("ig/torch-ig-bert-base.json").toFile(), torchIg());
        MAPPER.writeValue(dir.resolve("stats.json").toFile(), outliers(data.toString()));
        MAPPER.writeValue(dir.resolve("drift.json").toFile(), drift());
        MAPPER.writeValue(dir.resolve("demo.json").toFile(), demo());
        Files.writeString(dir.resolve("notes.json"), "{\"hello\": \"world\"}");
        Files.writeString(dir.resolve("broken.json"), "{ not json");
    }

    /** As QuantizeEval writes it, calibration provenance as RunInputs.calibrationProvenance gives it. */
    static QuantizeEval.Result quantizeEval(String data, String head, String calibrationFile) {
        MixedPrecision.Result mixed = new MixedPrecision.Result(Set.of("layer.0.output_residual"),
                List.of(new MixedPrecision.Sensitivity("layer.0.output_residual", 0.31)), 0.90, 0.80, 0.895);
        Map<String, String> calibration = new LinkedHashMap<>();
        calibration.put("file", calibrationFile);
        calibration.put("examples", "256");
        calibration.put("seed", "20261123");
        calibration.put("method", "a seeded sample; two FP32 passes");
        calibration.put("data", data);
        calibration.put("model", "builtin:minilm");
        return new QuantizeEval.Result("builtin:minilm", head, data, calibration, "cpu (2 cores, 512-bit vectors)", List.of(
                row("fp32", "FP32", 0.9123, 0.89, 0.93, 1.0, 0, 0.0, 150.0, Set.of(), null),
                row("w8a8", "weights 8-bit symmetric per-tensor; activations 8-bit asymmetric per-tensor", 0.8021, 0.77, 0.83, 0.85, 41, 0.25, 110.0, Set.of(), null),
                row("peg3", "PEG K=3", 0.8899, 0.86, 0.91, 0.95, 12, 0.05, 90.0, Set.of(), null),
                row("mixed", "w8a8 with sensitive sites in FP32", 0.9011, 0.88, 0.92, 0.97, 8, 0.02, 95.0, new LinkedHashSet<>(mixed.fp32Sites()), mixed)));
    }

    private static QuantizeEval.Row row(String scheme, String desc, double acc, double lo, double hi, double agree, int flips, double kl,
                                        double perS, Set<String> fp32Sites, MixedPrecision.Result mixed) {
        return new QuantizeEval.Row(scheme, desc, 272, acc, lo, hi, agree, flips, kl, perS, null, fp32Sites, mixed, null);
    }

    /** As EvalCommand writes it: a map. */
    static Map<String, Object> eval(String data) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", "builtin:minilm");
        out.put("head", "heads/minilm-sst2.safetensors");
        out.put("selection", Map.of("data", data, "task", "sst2", "seed", "13"));
        out.put("labels", List.of("negative", "positive"));
        out.put("n", 272);
        out.put("accuracy", 0.9123);
        out.put("accuracy_ci95", new double[] {0.89, 0.93});
        out.put("per_class_accuracy", new double[] {0.9034, 0.9211});
        out.put("confusion", new int[][] {{131, 14}, {10, 117}});
        out.put("mean_logits", new double[] {-0.4, 0.4});
        out.put("backend", "cpu (2 cores, 512-bit vectors)");
        return out;
    }

    static Verification.Result verify(String data) {
        return new Verification.Result("builtin:minilm", "cpu (2 cores, 512-bit vectors)", data, 200, 7, 3.2e-6, 1.1e-6, 4.0e-6, 17, 1e-4, true, 0);
    }

    static LatencyBench.Result bench() {
        return new LatencyBench.Result("shape:minilm", "fp32", "cuda NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)", "CUDA events, median", List.of(
                new LatencyBench.Row(1, 128, 50, 1.41, 1.29, 2.35, 709.6, 1.10, 0.56, 93605376L, 153092096L),
                new LatencyBench.Row(32, 128, 50, 3.80, 3.74, 3.87, 8421.9, 3.62, 3.36, 197265408L, 262144000L)));
    }

    /** The same model and device on the s8 kernels: the report compares it with {@link #bench()}. */
    static LatencyBench.Result benchInt8() {
        return new LatencyBench.Result("shape:minilm", "w8a8-pt (s8 kernels)", "cuda NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)",
                "CUDA events, median", List.of(
                new LatencyBench.Row(1, 128, 50, 1.20, 1.10, 2.00, 833.3, 0.95, 0.50, 80000000L, 140000000L),
                new LatencyBench.Row(32, 128, 50, 2.40, 2.35, 2.50, 13333.3, 2.30, 2.20, 150000000L, 220000000L)));
    }

    /** As tools/gpu-run.sh writes it (Python). */
    static ObjectNode torch() {
        ObjectNode t = MAPPER.createObjectNode().put("model", "shape:minilm").put("device", "NVIDIA H100 80GB HBM3").put("torch", "2.11.0+cu130");
        ArrayNode rows = t.putArray("rows");
        for (String dtype : List.of("float32", "float16"))
            for (int b : new int[] {1, 32})
                rows.addObject().put("dtype", dtype).put("batch", b).put("seq", 128).put("median_ms", dtype.equals("float32") ? 4.6 : 2.6);
        return t;
    }

    /** As `qdrift bench --ig-steps 50 --ig-schemes fp32,fp32+tf32` writes it (the H100 figures of 2026-11-23). */
    static IgBench.Result igBench() {
        return new IgBench.Result("shape:bert-base", "cuda NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)", "CUDA events, median", List.of(
                new IgBench.Row("fp32", 50, 128, 70.82, 71.5, 14.12, 2280.0, 32.19, 5849421824L, null, null),
                new IgBench.Row("fp32 TF32", 50, 128, 24.73, 25.1, 40.44, 2280.0, 92.20, 5849421824L, null, 4.0e-4)));
    }

    /** As bench/gpu/pytorch_ig.py prints it. */
    static ObjectNode torchIg() {
        ObjectNode t = MAPPER.createObjectNode().put("model", "shape:bert-base").put("device", "NVIDIA H100 80GB HBM3")
                .put("torch", "2.11.0+cu130").put("steps", 50).put("seq", 128);
        ArrayNode rows = t.putArray("rows");
        rows.addObject().put("dtype", "float32").put("ms_per_ig", 64.32).put("peak_mib", 900.0);
        rows.addObject().put("dtype", "tf32").put("ms_per_ig", 22.34).put("peak_mib", 900.0);
        rows.addObject().put("dtype", "float16").put("ms_per_ig", 19.82).put("peak_mib", 500.0);
        return t;
    }

    /** Field names as Outliers.Result writes them; 2 layers, hidden 16, one outlier channel (3). */
    static ObjectNode outliers(String data) {
        int hidden = 16, layers = 2;
        String[] sites = {"attention_context", "output_residual"};
        ObjectNode r = MAPPER.createObjectNode();
        r.putObject("selection").put("data", data).put("task", "sst2").put("seed", "13");
        r.put("model", "builtin:minilm").put("data", data).put("inputs", 100).put("tokens", 1234).put("truncated", 0)
                .put("layers", layers).put("hidden", hidden).put("intermediate", 64).put("backend", "cpu (2 cores, 512-bit vectors)");
        r.putObject("definitions").put("kurtosis", "Fisher excess kurtosis m4/m2^2 - 3");
        r.putObject("tokensByCategory").put("cls", 100).put("sep", 100).put("other", 1034);
        ObjectNode summary = r.putObject("summary");
        ArrayNode rows = summary.putArray("layers");
        rows.addObject().put("layer", 0).put("maxKurtosis", 12.5).put("maxKurtosisSite", "output_residual").put("maxEnergyShareTop1Percent", 0.31)
                .put("maxEnergySite", "output_residual").put("maxOverMedian", 40.0).put("maxOverMedianSite", "output_residual")
                .put("outlierChannels", 1).put("intermediateOutlierChannels", 0).putArray("topDims").add(3);
        rows.addObject().put("layer", 1).put("maxKurtosis", 271.25).put("maxKurtosisSite", "output_residual").put("maxEnergyShareTop1Percent", 0.55)
                .put("maxEnergySite", "output_residual").put("maxOverMedian", 120.0).put("maxOverMedianSite", "output_residual")
                .put("outlierChannels", 1).put("intermediateOutlierChannels", 2).putArray("topDims").add(3);
        ObjectNode k = summary.putObject("kurtosisByDepth"), e = summary.putObject("energyShareByDepth");
        k.putArray("attention_context").add(1.5).add(2.5);
        k.putArray("output_residual").add(12.5).add(271.25);
        e.putArray("attention_context").add(0.05).add(0.07);
        e.putArray("output_residual").add(0.31).add(0.55);
        ArrayNode perLayer = r.putArray("perLayer");
        Random rnd = new Random(7);
        for (int l = 0; l < layers; l++) {
            ArrayNode ss = perLayer.addObject().put("layer", l).putArray("sites");
            for (String site : sites) {
                ObjectNode s = ss.addObject().put("key", "layer." + l + "." + site).put("site", site).put("layer", l).put("channels", hidden)
                        .put("excessKurtosis", site.equals("output_residual") ? (l == 0 ? 12.5 : 271.25) : 1.5 + l)
                        .put("maxOverMedian", site.equals("output_residual") ? (l == 0 ? 40.0 : 120.0) : 8.0)
                        .put("energyShareTop1Percent", 0.3);
                ArrayNode min = s.putArray("channelMin"), max = s.putArray("channelMax");
                for (int j = 0; j < hidden; j++) {
                    double w = j == 3 ? 60 : 1 + rnd.nextDouble() * 2;
                    min.add(-w * (0.5 + rnd.nextDouble() / 2));
                    max.add(w);
                }
                ArrayNode groups = s.putObject("pegGroups").putArray("3");
                groups.addArray().add(3).add(0).add(1).add(2).add(4);
                groups.addArray().add(5).add(6).add(7).add(8).add(9);
                groups.addArray().add(10).add(11).add(12).add(13).add(14).add(15);
                s.putArray("outlierChannels6Sigma").add(3);
                s.putArray("outliers").addObject().put("channel", 3).put("maxAbs", 60.0).put("overSigma", 30.0 + l).put("overMedian", 120.0)
                        .put("tokenRate", 0.081).put("inputRate", 1.0).putObject("hitsByCategory").put("cls", 100).put("sep", 0).put("other", 0);
            }
        }
        return r;
    }

    /**
     * The shape documented in {@link DriftData}, as experiment.DriftAggregate writes it: the FP32
     * reference among the schemes, w8a8 with its "all" statistics and groups, peg3 with only the
     * per-example arrays (an older or trimmed file).
     */
    static ObjectNode drift() {
        ObjectNode d = MAPPER.createObjectNode().put("device", "cpu: test box, 2 cores").put("kind", "qdrift-drift").put("model", "builtin:minilm")
                .put("head", "heads/minilm-sst2.safetensors").put("data", "builtin:demo").put("method", "integrated gradients, 32 steps")
                .put("target", "logit of the FP32-predicted class").put("n", 20);
        d.putObject("selection").put("data", "builtin:demo").put("task", "sst2").put("seed", "13").put("split", "0.7");
        ArrayNode schemes = d.putArray("schemes");
        for (String s : List.of("fp32", "w8a8", "peg3")) {
            double base = s.equals("fp32") ? 1 : s.equals("w8a8") ? 0.6 : 0.85, step = s.equals("fp32") ? 0 : 0.005;
            double shift = s.equals("fp32") ? 0 : s.equals("w8a8") ? 0.3 : 0.05;
            ObjectNode o = schemes.addObject().put("scheme", s).put("n", 20);
            ArrayNode rho = o.putArray("spearman");
            for (int i = 0; i < 20; i++) rho.add(base + step * i);
            ObjectNode logits = o.putObject("logitShift");
            ArrayNode fp = logits.putArray("fp32"), q = logits.putArray("quantized");
            for (int i = 0; i < 20; i++) {
                fp.add(-2 + 0.2 * i);
                q.add(-2 + 0.2 * i + shift);
            }
            if (s.equals("peg3")) continue;   // only the arrays
            boolean ref = s.equals("fp32");
            o.put("agreement", ref ? 1.0 : 0.85).put("flips", ref ? 0 : 3);
            ObjectNode all = group(o.putObject("all"), 20, ref ? 1.0 : 0.85, ref ? 0 : 3, ref ? 1.0 : 0.6475);
            all.put("agreementCiLow", ref ? 1.0 : 0.7).put("agreementCiHigh", 1.0);
            ((ObjectNode) all.get("metrics")).putObject("kendall").put("mean", ref ? 1.0 : 0.512).put("ciLow", 0.4).put("ciHigh", 0.6).put("n", 20);
            ObjectNode byCorrectness = o.putObject("byCorrectness");
            group(byCorrectness.putObject("correct"), 15, ref ? 1.0 : 0.933, ref ? 0 : 1, ref ? 1.0 : 0.66);
            group(byCorrectness.putObject("incorrect"), 5, ref ? 1.0 : 0.6, ref ? 0 : 2, ref ? 1.0 : 0.61);
            ObjectNode byLength = o.putObject("byLength");
            group(byLength.putObject("<=10"), 20, ref ? 1.0 : 0.85, ref ? 0 : 3, ref ? 1.0 : 0.6475);
            byLength.putObject(">20").put("n", 0);   // no such examples: left out of the table
        }
        ObjectNode ex = d.putArray("examples").addObject().put("text", "a gripping , funny film .").put("label", "positive");
        ArrayNode tokens = ex.putArray("tokens");
        for (String t : List.of("[CLS]", "a", "grip", "##ping", ",", "funny", "film", ".", "[SEP]")) tokens.add(t);
        ObjectNode attr = ex.putObject("attributions");
        double[] fp32 = {0.01, 0.05, 0.6, 0.2, -0.05, 0.9, 0.1, 0.0, 0.02};
        double[] w8 = {0.3, 0.05, 0.2, 0.1, -0.4, 0.5, 0.1, 0.0, 0.2};
        ArrayNode a = attr.putArray("fp32"), b = attr.putArray("w8a8");
        for (double v : fp32) a.add(v);
        for (double v : w8) b.add(v);
        ex.putObject("predicted").put("fp32", "positive").put("w8a8", "negative");
        return d;
    }

    private static ObjectNode group(ObjectNode g, int n, double agreement, int flips, double spearman) {
        g.put("n", n).put("agreement", agreement).put("flips", flips);
        g.putObject("metrics").putObject("spearman").put("mean", spearman).put("ciLow", spearman - 0.05).put("ciHigh", Math.min(1, spearman + 0.05))
                .put("n", n);
        return g;
    }

    /** As DemoCommand writes it, with the verification record inside. */
    static Map<String, Object> demo() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", "builtin:minilm");
        m.put("data", Map.of("data", "builtin:demo", "task", "sst2", "seed", "13", "split", "0.7"));
        m.put("verify", new Verification.Result("builtin:minilm", "cpu (2 cores, 512-bit vectors)", "builtin:demo", 96, 3, 8.3e-7,
                5.2e-7, 2.4e-6, 83, 1e-4, true, 0));
        m.put("held_out_accuracy", 0.7604166666666666);
        m.put("held_out_n", 96);
        m.put("head", "out/demo/head.safetensors");
        return m;
    }
}
