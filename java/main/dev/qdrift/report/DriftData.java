package dev.qdrift.report;

import static dev.qdrift.report.ReportData.doubles;
import static dev.qdrift.report.ReportData.fields;
import static dev.qdrift.report.ReportData.num;
import static dev.qdrift.report.ReportData.strings;
import static dev.qdrift.report.ReportData.stringList;
import static dev.qdrift.report.ReportData.text;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Attribution drift: how much each quantization scheme changes which tokens the model relies on, as
 * the report reads it. The drift run's aggregate ({@code experiment.DriftAggregate.Result}, written
 * as aggregate.json; any name — recognized by its fields) has this shape; every part but the
 * recognizing fields is optional, and the report draws what is there. Read from the JSON tree, not
 * bound to the record, so the report keeps working while that record grows.
 *
 * <pre>{@code
 * {
 *   "kind": "qdrift-drift",                      // the marker (or: schemes[0].spearman, or examples[0].attributions)
 *   "model": "builtin:minilm", "head": "heads/minilm-sst2.safetensors", "data": "../shared/data/sst2/dev.tsv",
 *   "method": "integrated gradients, 32 steps", "target": "FP32-predicted class logit",
 *   "selection": {"data": "...", "task": "sst2", "seed": "13"},   // as DataSelection.describe()
 *   "n": 200,
 *   "schemes": [
 *     { "scheme": "w8a8", "description": "...", "n": 200,
 *       "spearman": [0.91, 0.87, ...],           // per example: Spearman ρ of attributions, FP32 vs this scheme
 *       "agreement": 0.97, "flips": 6,           // prediction agreement with FP32 (else taken from quantize-eval)
 *       "all": { "n": 200, "agreementCiLow": 0.94, "agreementCiHigh": 0.99,
 *                "metrics": { "spearman": {"mean": 0.88, "ciLow": 0.86, "ciHigh": 0.9, "n": 198}, "kendall": {...}, ... } },
 *       "byCorrectness": { "correct": {group}, "incorrect": {group} },   // groups as "all"
 *       "byClass": { "negative": {group}, ... }, "byLength": { "<=10": {group}, ... },
 *       "logitShift": { "fp32": [2.1, ...], "quantized": [1.7, ...] }   // per example, the explained class's logit
 *     }
 *   ],
 *   "examples": [
 *     { "text": "a gripping , funny film .", "label": "positive",
 *       "tokens": ["a", "gripping", ",", "funny", "film", "."],       // words or wordpieces ("##" joins its word)
 *       "attributions": { "fp32": [0.1, 0.8, ...], "w8a8": [...] },  // one value per token; "fp32" first
 *       "predicted": { "fp32": "positive", "w8a8": "negative" } }
 *   ]
 * }
 * }</pre>
 *
 * @param schemes   per scheme, in file order (the FP32 reference may be among them: {@link SchemeDrift#isReference})
 * @param examples  sentences with token attributions per precision, for the heat maps
 */
public record DriftData(String model, String head, String data, String method, String target, Map<String, String> selection,
                        List<SchemeDrift> schemes, List<Example> examples) {

    /** The FP32 scheme name: compared with itself, it is the reference, not a result. */
    public static final String REFERENCE = "fp32";

    /** A mean with its bootstrap CI; NaN where absent. */
    public record Stat(double mean, double ciLow, double ciHigh, int n) {}

    /** One slice of the examples (all, FP32 correct / incorrect, a gold class, a length bucket). */
    public record Group(String name, int n, double agreement, int flips, Map<String, Stat> metrics) {}

    /**
     * @param spearman     per-example rank correlations (may be empty)
     * @param agreement    NaN when absent
     * @param flips        -1 when absent
     * @param metrics      metric → mean with CI over all examples ("spearman", "kendall", "top1", ...); may be empty
     * @param groups       slices by FP32 correctness, gold class and length, named for display; may be empty
     * @param fp32Logits   per example, may be null
     * @param quantLogits  same length as fp32Logits, may be null
     */
    public record SchemeDrift(String scheme, String description, int n, double[] spearman, double agreement, double agreementCiLow,
                              double agreementCiHigh, int flips, Map<String, Stat> metrics, List<Group> groups, double[] fp32Logits,
                              double[] quantLogits) {
        public double meanSpearman() {
            Stat s = metrics.get("spearman");
            if (s != null && Double.isFinite(s.mean())) return s.mean();
            if (spearman.length == 0) return Double.NaN;
            double sum = 0;
            for (double v : spearman) sum += v;
            return sum / spearman.length;
        }

        public boolean isReference() {
            return REFERENCE.equalsIgnoreCase(scheme);
        }
    }

    /** @param attributions precision ("fp32" or a scheme) → one value per token */
    public record Example(String text, String label, List<String> tokens, Map<String, double[]> attributions,
                         Map<String, String> predicted) {}

    /** True for a document of this shape: the marker, or schemes with Spearman arrays, or examples with attributions. */
    static boolean looksLike(JsonNode root) {
        if ("qdrift-drift".equals(root.path("kind").asText())) return true;
        if (root.path("schemes").path(0).has("spearman")) return true;
        return root.path("examples").path(0).has("attributions");
    }

    static DriftData from(JsonNode r) {
        List<SchemeDrift> schemes = new ArrayList<>();
        for (JsonNode s : r.path("schemes")) {
            double[] rho = doubles(s.path("spearman"));
            double[] fp = doubles(s.path("logitShift").path("fp32")), q = doubles(s.path("logitShift").path("quantized"));
            if (fp == null || q == null || fp.length != q.length) fp = q = null;   // a scatter needs both, paired
            JsonNode all = s.path("all");
            double agreement = s.has("agreement") ? num(s.path("agreement")) : num(all.path("agreement"));
            int flips = s.has("flips") ? s.path("flips").asInt() : all.path("flips").asInt(-1);
            List<Group> groups = new ArrayList<>();
            fields(s.path("byCorrectness"), g -> g).forEach((k, g) -> groups.add(group("FP32 " + k, g)));
            fields(s.path("byClass"), g -> g).forEach((k, g) -> groups.add(group("gold " + k, g)));
            fields(s.path("byLength"), g -> g).forEach((k, g) -> groups.add(group(k + " words", g)));
            schemes.add(new SchemeDrift(text(s, "scheme"), text(s, "description"), s.path("n").asInt(rho == null ? 0 : rho.length),
                    rho == null ? new double[0] : rho, agreement, num(all.path("agreementCiLow")), num(all.path("agreementCiHigh")), flips,
                    stats(all.path("metrics")), groups, fp, q));
        }
        List<Example> examples = new ArrayList<>();
        for (JsonNode e : r.path("examples")) {
            List<String> tokens = stringList(e.path("tokens"));
            Map<String, double[]> attr = new LinkedHashMap<>();
            // Keep only rows that line up with the tokens: a heat map of mismatched lengths would mislead.
            fields(e.path("attributions"), ReportData::doubles).forEach((k, v) -> {
                if (v != null && v.length == tokens.size()) attr.put(k, v);
            });
            if (tokens.isEmpty() || attr.isEmpty()) continue;
            examples.add(new Example(text(e, "text"), text(e, "label"), tokens, attr, strings(e.path("predicted"))));
        }
        return new DriftData(text(r, "model"), text(r, "head"), text(r, "data"), text(r, "method"), text(r, "target"),
                strings(r.path("selection")), schemes, examples);
    }

    private static Group group(String name, JsonNode g) {
        return new Group(name, g.path("n").asInt(), num(g.path("agreement")), g.path("flips").asInt(-1), stats(g.path("metrics")));
    }

    private static Map<String, Stat> stats(JsonNode metrics) {
        Map<String, Stat> out = fields(metrics, m -> new Stat(num(m.path("mean")), num(m.path("ciLow")), num(m.path("ciHigh")), m.path("n").asInt()));
        out.values().removeIf(s -> !Double.isFinite(s.mean()));   // a metric undefined on every example
        return out;
    }
}
