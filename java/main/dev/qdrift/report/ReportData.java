package dev.qdrift.report;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.QdriftException;
import dev.qdrift.experiment.IgBench;
import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.Verification;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Every result file in a directory that the report knows how to show, recognized by its fields
 * rather than its name (users rename files; {@code out/q.json} and {@code sst2-w8a8.json} are both
 * quantize-eval results).
 *
 * <p>Results written by qdrift's own records ({@link QuantizeEval.Result}, {@link Verification.Result},
 * {@link LatencyBench.Result}) are bound to those records, leniently: a file written by an older
 * version that lacks a field still loads, with that field null or zero. Results whose writer is a
 * plain map ({@code eval}, {@code demo}) or still changing ({@code outliers}, drift) are read from
 * the JSON tree by {@link EvalRun}, {@link DemoRun}, {@link OutlierData} and {@link DriftData},
 * which skip what is missing instead of failing.
 *
 * <p>A file that is not JSON, or JSON of no known kind, is listed as an input with a note and
 * otherwise ignored: a report over a directory should never fail because of one stray file.
 */
public final class ReportData {
    /** What a file holds; decided by {@link #classify}. */
    public enum Kind {
        QUANTIZE_EVAL("quantize-eval"), EVAL("eval"), VERIFY("verify"), BENCH("bench"), TORCH_BENCH("PyTorch bench"),
        IG_BENCH("IG bench"), TORCH_IG_BENCH("PyTorch IG bench"), CPU_BENCH("CPU JMH bench"), OUTLIERS("outliers"), DRIFT("drift"), DRIFT_RUN("drift run arguments"), DEMO("demo"),
        CALIBRATION("calibration statistics"), REPORT("report"), UNKNOWN("not recognized");

        public final String label;

        Kind(String label) {
            this.label = label;
        }
    }

    /**
     * One file found in the directory.
     *
     * @param path      relative to the directory read
     * @param sha256    of the file's bytes
     * @param modified  last-modified time of the file (results carry no timestamp of their own)
     * @param note      why it was not used, or null
     * @param device    the file's top-level "device" field (where the result was measured), or null
     */
    public record Input(String path, Kind kind, String sha256, String modified, long bytes, String note, String device) {}

    /** A parsed result and the file it came from. */
    public record Loaded<T>(Input input, T value) {}

    /** The PyTorch reference timings written by tools/gpu-run.sh next to {@code qdrift bench}. */
    public record TorchBench(String model, String device, String torch, List<TorchRow> rows) {}

    public record TorchRow(String dtype, int batch, int seq, double medianMs) {}

    /** The PyTorch IG reference (bench/gpu/pytorch_ig.py) next to {@code qdrift bench --ig-steps}: ms per IG by dtype. */
    public record TorchIgBench(String model, String device, String torch, int steps, int seq, Map<String, Double> msPerIg) {}

    /**
     * A CPU JMH comparison (bench/results/cpu-NAME-DATE.json, CpuBenchReport): ours vs ONNX Runtime, or float32 IG vs float64.
     *
     * @param msPerCall  implementation → mean ms per benchmark call (ms_per_call; ms_per_batch in files before 2026-12-06)
     */
    public record CpuBench(String benchmark, String device, String date, String jvm, Map<String, Double> msPerCall,
                           Map<String, Double> msError) {}

    /** The JSON {@code qdrift eval --json} writes (a map in EvalCommand). */
    public record EvalRun(String model, String head, Map<String, String> selection, List<String> labels, int n, double accuracy,
                          double ciLow, double ciHigh, double[] perClassAccuracy, int[][] confusion, double[] meanLogits,
                          String backend) {}

    /**
     * run.json of a drift run (experiment.DriftRun): the arguments that define it. Only its provenance is
     * shown (the results are in the aggregate beside it).
     *
     * @param calibration    the --calibration file, or null
     * @param calibrationSha256 SHA-256 of the calibration statistics' JSON as the run recorded it, or null
     *                       when the run calibrated nothing (FP32 only)
     */
    public record DriftRunArgs(String head, String headSha256, String calibration, int calibSize, String calibrationSha256,
                               Map<String, String> selection) {}

    /** demo.json of {@code qdrift demo}: the verification, then a probe's held-out accuracy. */
    public record DemoRun(String model, Map<String, String> selection, Verification.Result verify, double heldOutAccuracy,
                          int heldOutN, String head) {}

    /** Depth of the directory walk: results sit in DIR or a dated folder or two below it. */
    static final int MAX_DEPTH = 4;

    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)     // NaN written by other tools
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)   // newer writers add fields
            .disable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .build();

    /** Where relative paths in the results are looked up from: the directory read, or the one file's directory. */
    public final Path dir;
    /** What was read: the directory, or the one result file. */
    public final Path source;
    public final List<Input> inputs = new ArrayList<>();
    public final List<Loaded<QuantizeEval.Result>> quantize = new ArrayList<>();
    public final List<Loaded<EvalRun>> evals = new ArrayList<>();
    public final List<Loaded<Verification.Result>> verifications = new ArrayList<>();
    public final List<Loaded<LatencyBench.Result>> benches = new ArrayList<>();
    public final List<Loaded<TorchBench>> torchBenches = new ArrayList<>();
    public final List<Loaded<IgBench.Result>> igBenches = new ArrayList<>();
    public final List<Loaded<TorchIgBench>> torchIgBenches = new ArrayList<>();
    public final List<Loaded<CpuBench>> cpuBenches = new ArrayList<>();
    public final List<Loaded<OutlierData>> outliers = new ArrayList<>();
    public final List<Loaded<DriftData>> drift = new ArrayList<>();
    public final List<Loaded<DriftRunArgs>> driftRuns = new ArrayList<>();
    public final List<Loaded<DemoRun>> demos = new ArrayList<>();

    private ReportData(Path dir, Path source) {
        this.dir = dir;
        this.source = source;
    }

    /**
     * Reads every {@code *.json} in a directory and its subdirectories (hidden ones skipped), in path
     * order; or one result file alone (what a command's --report reads after writing --json FILE), whose
     * directory is then the one relative paths in it are looked up from.
     */
    public static ReportData read(Path path) {
        if (Files.isRegularFile(path)) {
            ReportData d = new ReportData(path.getParent() != null ? path.getParent() : Path.of(""), path);
            d.add(path);
            return d;
        }
        if (!Files.isDirectory(path)) throw new QdriftException(path + ": no such directory or file");
        ReportData d = new ReportData(path, path);
        List<Path> files;
        try (Stream<Path> walk = Files.walk(path, MAX_DEPTH)) {
            files = walk.filter(p -> Files.isRegularFile(p) && p.getFileName().toString().endsWith(".json"))
                    .filter(p -> !hidden(path.relativize(p)))
                    .sorted().toList();
        } catch (IOException e) {
            throw new QdriftException(path + ": cannot list: " + e.getMessage(), e);
        }
        for (Path f : files) d.add(f);
        return d;
    }

    private static boolean hidden(Path relative) {
        for (Path part : relative) if (part.toString().startsWith(".")) return true;
        return false;
    }

    private void add(Path file) {
        String rel = dir.relativize(file).toString();
        byte[] bytes;
        String modified;
        try {
            bytes = Files.readAllBytes(file);
            modified = Files.getLastModifiedTime(file).toInstant().truncatedTo(ChronoUnit.SECONDS).toString();
        } catch (IOException e) {
            inputs.add(new Input(rel, Kind.UNKNOWN, null, null, 0, "cannot read: " + e.getMessage(), null));
            return;
        }
        String sha = sha256(bytes);
        JsonNode root;
        try {
            root = MAPPER.readTree(bytes);
        } catch (IOException e) {
            inputs.add(new Input(rel, Kind.UNKNOWN, sha, modified, bytes.length, "not JSON: " + firstLine(e.getMessage()), null));
            return;
        }
        Kind kind = classify(root);
        if (kind == Kind.REPORT) return;   // our own output from an earlier run: not an input
        String device = root.isObject() ? text(root, "device") : null;
        Input in = new Input(rel, kind, sha, modified, bytes.length, kind == Kind.UNKNOWN ? "no known result fields" : null, device);
        try {
            switch (kind) {
                case QUANTIZE_EVAL -> quantize.add(new Loaded<>(in, MAPPER.treeToValue(withCalibrationMap(root), QuantizeEval.Result.class)));
                case VERIFY -> verifications.add(new Loaded<>(in, MAPPER.treeToValue(root, Verification.Result.class)));
                case BENCH -> benches.add(new Loaded<>(in, MAPPER.treeToValue(root, LatencyBench.Result.class)));
                case TORCH_BENCH -> torchBenches.add(new Loaded<>(in, torchBench(root)));
                case IG_BENCH -> igBenches.add(new Loaded<>(in, MAPPER.treeToValue(root, IgBench.Result.class)));
                case TORCH_IG_BENCH -> torchIgBenches.add(new Loaded<>(in, torchIgBench(root)));
                case CPU_BENCH -> cpuBenches.add(new Loaded<>(in, cpuBench(root)));
                case EVAL -> evals.add(new Loaded<>(in, evalRun(root)));
                case DEMO -> demos.add(new Loaded<>(in, demoRun(root)));
                case OUTLIERS -> outliers.add(new Loaded<>(in, OutlierData.from(root)));
                case DRIFT -> drift.add(new Loaded<>(in, DriftData.from(root)));
                case DRIFT_RUN -> driftRuns.add(new Loaded<>(in, driftRun(root)));
                default -> { }
            }
        } catch (IOException | RuntimeException e) {
            // Recognized but unreadable (a field of the wrong type): say so and go on without it.
            in = new Input(rel, Kind.UNKNOWN, sha, modified, bytes.length,
                    "looks like " + kind.label + " but cannot be read: " + firstLine(e.getMessage()), device);
        }
        inputs.add(in);
    }

    /**
     * What a JSON document is, from the fields its writer always puts there. Order matters only where
     * kinds share fields: demo.json holds a verification object, so it is tested before verify.
     */
    public static Kind classify(JsonNode root) {
        if (root == null || !root.isObject()) return Kind.UNKNOWN;
        if (root.has(ReportModel.MARKER)) return Kind.REPORT;
        JsonNode firstRow = root.path("rows").path(0);
        if (firstRow.has("scheme") && firstRow.has("accuracy")) return Kind.QUANTIZE_EVAL;
        if (firstRow.has("medianMs") && firstRow.has("batch")) return Kind.BENCH;
        if (firstRow.has("median_ms") && firstRow.has("dtype")) return Kind.TORCH_BENCH;
        if (firstRow.has("msPerIg")) return Kind.IG_BENCH;
        if (firstRow.has("ms_per_ig") && firstRow.has("dtype")) return Kind.TORCH_IG_BENCH;
        if (root.has("held_out_accuracy") && root.path("verify").isObject()) return Kind.DEMO;
        if (root.has("maxRelative") && root.has("tolerance")) return Kind.VERIFY;
        if (root.has("accuracy") && root.has("confusion")) return Kind.EVAL;
        if (root.has("perLayer") || root.path("summary").has("kurtosisByDepth")) return Kind.OUTLIERS;
        if (DriftData.looksLike(root)) return Kind.DRIFT;
        if ("qdrift-drift-run".equals(root.path("kind").asText())) return Kind.DRIFT_RUN;
        if (root.has("ms_per_call") || root.has("ms_per_batch")) return Kind.CPU_BENCH;
        if (root.has("sites") && root.has("provenance")) return Kind.CALIBRATION;   // --calibration FILE: named, not shown
        return Kind.UNKNOWN;
    }

    // ---- readers for results whose writer is a map ----

    /** "{model=m, data=d, examples=256}": how quantize-eval recorded its calibration before it wrote a map. */
    private static final Pattern LEGACY_ENTRY = Pattern.compile("(\\w+)=([^,}]*)");

    /** The quantize-eval tree with a calibration written as a string (older results) turned into the map written now. */
    private static JsonNode withCalibrationMap(JsonNode root) {
        JsonNode c = root.get("calibration");
        if (c == null || !c.isTextual()) return root;
        ObjectNode copy = ((ObjectNode) root).deepCopy();
        ObjectNode map = copy.putObject("calibration");
        for (Matcher m = LEGACY_ENTRY.matcher(c.asText()); m.find(); ) map.put(m.group(1), m.group(2).trim());
        return copy;
    }

    private static DriftRunArgs driftRun(JsonNode r) {
        JsonNode args = r.path("arguments");
        return new DriftRunArgs(text(args, "head"), text(r.path("hashes"), "head"), text(args, "calibration"), args.path("calibSize").asInt(),
                text(r, "calibration"), strings(r.path("selection")));
    }

    private static EvalRun evalRun(JsonNode r) {
        JsonNode ci = r.path("accuracy_ci95");
        return new EvalRun(text(r, "model"), text(r, "head"), strings(r.path("selection")), stringList(r.path("labels")),
                r.path("n").asInt(), num(r.path("accuracy")), num(ci.path(0)), num(ci.path(1)),
                doubles(r.path("per_class_accuracy")), ints2(r.path("confusion")), doubles(r.path("mean_logits")), text(r, "backend"));
    }

    private static DemoRun demoRun(JsonNode r) throws IOException {
        return new DemoRun(text(r, "model"), strings(r.path("data")), MAPPER.treeToValue(r.path("verify"), Verification.Result.class),
                num(r.path("held_out_accuracy")), r.path("held_out_n").asInt(), text(r, "head"));
    }

    private static TorchBench torchBench(JsonNode r) {
        List<TorchRow> rows = new ArrayList<>();
        for (JsonNode row : r.path("rows"))
            rows.add(new TorchRow(text(row, "dtype"), row.path("batch").asInt(), row.path("seq").asInt(), num(row.path("median_ms"))));
        return new TorchBench(text(r, "model"), text(r, "device"), text(r, "torch"), rows);
    }

    private static TorchIgBench torchIgBench(JsonNode r) {
        Map<String, Double> ms = new LinkedHashMap<>();
        for (JsonNode row : r.path("rows")) ms.put(text(row, "dtype"), num(row.path("ms_per_ig")));
        return new TorchIgBench(text(r, "model"), text(r, "device"), text(r, "torch"), r.path("steps").asInt(), r.path("seq").asInt(), ms);
    }

    private static CpuBench cpuBench(JsonNode r) {
        return new CpuBench(text(r, "benchmark"), text(r, "device"), text(r, "date"), text(r, "jvm"),
                numbers(r.has("ms_per_call") ? r.path("ms_per_call") : r.path("ms_per_batch")), numbers(r.path("ms_error_99.9")));
    }

    // ---- tolerant tree access, shared with OutlierData and DriftData ----

    /** A text field, or null when absent; numbers and booleans are given as their text. */
    static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? null : v.isValueNode() ? v.asText() : v.toString();
    }

    /** A number, NaN when absent; accepts "NaN"/"Infinity" strings as Jackson writes them by default. */
    static double num(JsonNode v) {
        if (v == null || v.isMissingNode() || v.isNull()) return Double.NaN;
        if (v.isNumber()) return v.asDouble();
        if (v.isTextual()) {
            try {
                return Double.parseDouble(v.asText());
            } catch (NumberFormatException e) {
                return Double.NaN;
            }
        }
        return Double.NaN;
    }

    /** A number array, or null when absent (not an array). */
    static double[] doubles(JsonNode v) {
        if (v == null || !v.isArray()) return null;
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = num(v.get(i));
        return out;
    }

    static int[] ints(JsonNode v) {
        if (v == null || !v.isArray()) return null;
        int[] out = new int[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i).asInt();
        return out;
    }

    static int[][] ints2(JsonNode v) {
        if (v == null || !v.isArray()) return null;
        int[][] out = new int[v.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = ints(v.get(i));
            if (out[i] == null) return null;
        }
        return out;
    }

    static List<String> stringList(JsonNode v) {
        List<String> out = new ArrayList<>();
        if (v != null && v.isArray()) for (JsonNode e : v) out.add(e.asText());
        return out;
    }

    /** An object's fields as text, in file order (empty when absent). */
    static Map<String, String> strings(JsonNode v) {
        return fields(v, JsonNode::asText);
    }

    static Map<String, Double> numbers(JsonNode v) {
        return fields(v, ReportData::num);
    }

    static Map<String, double[]> doubleArrays(JsonNode v) {
        Map<String, double[]> out = fields(v, ReportData::doubles);
        out.values().removeIf(java.util.Objects::isNull);
        return out;
    }

    static <T> Map<String, T> fields(JsonNode v, Function<JsonNode, T> f) {
        Map<String, T> out = new LinkedHashMap<>();
        if (v == null || !v.isObject()) return out;
        for (Map.Entry<String, JsonNode> e : v.properties()) out.put(e.getKey(), f.apply(e.getValue()));
        return out;
    }

    // ---- hashing ----

    static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(digest().digest(bytes));
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** True when nothing in the directory could be shown. */
    public boolean isEmpty() {
        return quantize.isEmpty() && evals.isEmpty() && verifications.isEmpty() && benches.isEmpty() && torchBenches.isEmpty()
                && igBenches.isEmpty() && torchIgBenches.isEmpty() && cpuBenches.isEmpty() && outliers.isEmpty() && drift.isEmpty() && demos.isEmpty();   // run.json alone shows nothing
    }
}
