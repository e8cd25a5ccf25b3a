package dev.qdrift.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.qdrift.QdriftException;
import dev.qdrift.experiment.IgBench;
import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.Verification;
import dev.qdrift.report.ReportData.Loaded;
import dev.qdrift.report.ReportModel.Block;
import dev.qdrift.report.ReportModel.Column;
import dev.qdrift.report.ReportModel.Figure;
import dev.qdrift.report.ReportModel.Format;
import dev.qdrift.report.ReportModel.KeyValues;
import dev.qdrift.report.ReportModel.Paragraph;
import dev.qdrift.report.ReportModel.Section;
import dev.qdrift.report.ReportModel.Table;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code qdrift report DIR}: one self-contained HTML page over every result in DIR, plus the JSON
 * behind it. {@link ReportData} reads the directory, this class decides what goes in which section
 * (a {@link ReportModel}), {@link Charts} draws, {@link HtmlWriter} renders.
 *
 * <p>Sections appear only for results that are there; the page ends with what was not (and which
 * command would produce it), so a reader can tell "not measured" from "fine".
 */
public final class Report {
    /** @param notShown sections left out, with the reason */
    public record Written(Path html, Path json, int sections, int figures, List<String> notShown) {}

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** Heat maps per drift file: "a few example sentences". */
    static final int HEAT_MAP_EXAMPLES = 6;

    private final ReportData data;
    private final List<Section> sections = new ArrayList<>();
    private final List<String> notShown = new ArrayList<>();
    /** Makes element ids unique when a directory holds several results of one kind. */
    private int idSeq;

    private Report(ReportData data) {
        this.data = data;
    }

    /**
     * Reads input (a directory, or one result file) and writes html and, beside it, the same name with
     * .json (report.html → report.json).
     *
     * @param tool the qdrift version, for the provenance
     * @throws QdriftException when input is missing or holds no result qdrift knows (the message says what
     *                         it did find), or a file cannot be written
     */
    public static Written write(Path input, Path html, String tool) {
        ReportData d = ReportData.read(input);
        if (d.isEmpty()) {
            List<String> found = d.inputs.stream().map(in -> in.path() + (in.note() == null ? "" : " (" + in.note() + ")")).toList();
            throw new QdriftException(input + ": no qdrift results found (JSON written by quantize-eval, eval, verify, bench, outliers, "
                    + "drift, demo)" + (found.isEmpty() ? ": no .json files" : "; read: " + String.join("; ", found)));
        }
        ReportModel m = build(d, tool);
        Path json = jsonPath(html);
        try {
            writeAtomically(html, HtmlWriter.render(m).getBytes(StandardCharsets.UTF_8));
            writeAtomically(json, JSON.writeValueAsBytes(m));
        } catch (IOException e) {
            throw new QdriftException(html + ": cannot write the report: " + e.getMessage(), e);
        }
        int figs = (int) m.sections().stream().flatMap(s -> s.blocks().stream()).filter(b -> b instanceof Figure).count();
        return new Written(html, json, m.sections().size(), figs, m.notShown());
    }

    /** Where a report over input goes by default: DIR/report.html, or beside a result file q.json, q.report.html. */
    public static Path defaultHtml(Path input) {
        if (Files.isDirectory(input)) return input.resolve("report.html");
        String name = input.getFileName().toString();
        String stem = name.toLowerCase(Locale.ROOT).endsWith(".json") ? name.substring(0, name.length() - 5) : name;
        return input.resolveSibling(stem + ".report.html");
    }

    static Path jsonPath(Path html) {
        String name = html.getFileName().toString();
        String stem = name.toLowerCase(Locale.ROOT).endsWith(".html") ? name.substring(0, name.length() - 5)
                : name.toLowerCase(Locale.ROOT).endsWith(".htm") ? name.substring(0, name.length() - 4) : name;
        return html.resolveSibling(stem + ".json");
    }

    private static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path abs = file.toAbsolutePath();
        if (abs.getParent() != null) Files.createDirectories(abs.getParent());
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
        Files.write(tmp, bytes);
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The report as data, without writing anything. */
    public static ReportModel build(ReportData d, String tool) {
        Report r = new Report(d);
        Provenance p = Provenance.collect(d, tool, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        r.provenance(p);
        r.verification();
        r.baseline();
        r.quantization();
        r.outliers();
        r.drift();
        r.latency();
        r.inputs();
        String title = "qdrift report" + (p.models().isEmpty() ? "" : ": " + String.join(", ", p.models()));
        return new ReportModel(ReportModel.VERSION, title, d.source.toString(), p, List.copyOf(d.inputs), List.copyOf(r.sections),
                List.copyOf(r.notShown));
    }

    // ---- provenance ----

    private void provenance(Provenance p) {
        List<Block> b = new ArrayList<>();
        Map<String, String> kv = new LinkedHashMap<>();
        kv.put("written at", p.generated());
        kv.put("models", p.models().isEmpty() ? "–" : String.join(", ", p.models()));
        kv.put("devices / backends", p.devices().isEmpty() ? "–" : String.join("\n", p.devices()));
        kv.put("seeds", p.seeds().isEmpty() ? "– (none recorded in these results)" : String.join("\n", p.seeds()));
        b.add(new KeyValues(null, kv));
        b.add(new KeyValues("Versions (of the qdrift that wrote this report)", p.versions()));
        for (Map<String, String> c : p.calibrations()) b.add(new KeyValues("Calibration [" + c.get("named in") + "]", c));
        if (!p.files().isEmpty()) {
            List<List<Object>> rows = new ArrayList<>();
            for (Provenance.FileRef f : p.files())
                rows.add(row(f.path(), f.role(), f.sha256(), f.bytes(), f.note() != null ? f.note() : f.foundAt(),
                        String.join(", ", f.namedIn())));
            b.add(new Table("files", "Data and head files named in the results", List.of(Column.text("path"), Column.text("role"),
                    new Column("SHA-256", Format.HASH), new Column("bytes", Format.INT), Column.text("found at"), Column.text("named in")),
                    rows, "Paths as the commands were given them; each is looked up from the working directory, then from the results "
                    + "directory and its parents, and hashed where found."));
        }
        sections.add(new Section("provenance", "Provenance", b));
    }

    /** Last: every file read, with its hash, so the report can be traced back to the exact results. */
    private void inputs() {
        List<Block> b = new ArrayList<>();
        List<List<Object>> inputs = new ArrayList<>();
        for (ReportData.Input in : data.inputs)
            inputs.add(row(in.path(), in.kind().label, in.sha256(), in.modified(), in.bytes(), in.note()));
        b.add(new Table("inputs", "Result files read", List.of(Column.text("file"), Column.text("recognized as"),
                new Column("SHA-256", Format.HASH), Column.text("modified"), new Column("bytes", Format.INT), Column.text("note")),
                inputs, "Recognized by their fields, not their names."));
        sections.add(new Section("inputs", "Result files", b));
    }

    // ---- verification ----

    private void verification() {
        List<Block> b = new ArrayList<>();
        for (Loaded<Verification.Result> l : data.verifications) b.add(verifyLine(l.value(), l.input().path()));
        for (Loaded<ReportData.DemoRun> l : data.demos) if (l.value().verify() != null) b.add(verifyLine(l.value().verify(), l.input().path()));
        if (b.isEmpty()) {
            notShown.add("Verification against ONNX Runtime: no verify results (qdrift verify --json FILE, or demo.json).");
            return;
        }
        b.add(Paragraph.note("Error per input: max |ours − ONNX Runtime| / max |ONNX Runtime| of the last hidden state over real "
                + "tokens; the verdict is the worst input."));
        sections.add(new Section("verification", "Verification", b));
    }

    private static Paragraph verifyLine(Verification.Result v, String from) {
        String text = String.format(Locale.ROOT, "%s%s: our FP32 encoder vs ONNX Runtime on %d inputs of %s: max relative error %.2e "
                        + "(mean %.2e, relative Frobenius %.2e), tolerance %.0e: %s [%s]", v.model(),
                v.backend() == null ? "" : " on " + v.backend(), v.n(), v.data(), v.maxRelative(), v.meanRelative(),
                v.maxRelativeFrobenius(), v.tolerance(), v.passed() ? "PASS" : "FAIL", from);
        return new Paragraph(text, v.passed() ? "pass" : "fail");
    }

    // ---- FP32 baseline ----

    private void baseline() {
        List<Block> b = new ArrayList<>();
        for (Loaded<ReportData.EvalRun> l : data.evals) {
            ReportData.EvalRun e = l.value();
            Map<String, String> kv = new LinkedHashMap<>();
            kv.put("model", e.model());
            kv.put("head", e.head());
            kv.put("data", selection(e.selection()));
            kv.put("backend", e.backend());
            kv.put("accuracy", String.format(Locale.ROOT, "%.1f%% (95%% CI %.1f–%.1f%%) on %d examples", 100 * e.accuracy(),
                    100 * e.ciLow(), 100 * e.ciHigh(), e.n()));
            b.add(new KeyValues("FP32 evaluation [" + l.input().path() + "]", kv));
            List<String> labels = e.labels();
            int classes = e.perClassAccuracy() != null ? e.perClassAccuracy().length : e.confusion() != null ? e.confusion().length : 0;
            if (classes > 0) {
                List<Column> cols = new ArrayList<>(List.of(Column.text("gold class"), new Column("accuracy (recall)", Format.PERCENT),
                        new Column("mean logit", Format.FIXED3)));
                if (e.confusion() != null) for (int j = 0; j < classes; j++) cols.add(new Column("→ " + label(labels, j), Format.INT));
                List<List<Object>> rows = new ArrayList<>();
                for (int i = 0; i < classes; i++) {
                    List<Object> row = new ArrayList<>(List.of(label(labels, i)));
                    row.add(at(e.perClassAccuracy(), i));
                    row.add(at(e.meanLogits(), i));
                    if (e.confusion() != null) for (int j = 0; j < classes; j++) row.add(e.confusion()[i].length > j ? e.confusion()[i][j] : null);
                    rows.add(row);
                }
                b.add(new Table("eval-" + idSeq++, "Per class and confusion matrix", cols, rows,
                        "Rows: gold class; → columns: predicted class (counts)."));
            }
        }
        for (Loaded<ReportData.DemoRun> l : data.demos) {
            ReportData.DemoRun d = l.value();
            Map<String, String> kv = new LinkedHashMap<>();
            kv.put("model", d.model());
            kv.put("data", selection(d.selection()));
            kv.put("held-out accuracy", String.format(Locale.ROOT, "%.1f%% on %d examples", 100 * d.heldOutAccuracy(), d.heldOutN()));
            kv.put("head", d.head());
            b.add(new KeyValues("Demo: linear probe [" + l.input().path() + "]", kv));
        }
        if (b.isEmpty()) {
            notShown.add("FP32 baseline: no eval results (qdrift eval --json FILE) or demo.json.");
            return;
        }
        sections.add(new Section("baseline", "FP32 baseline", b));
    }

    // ---- quantization ----

    private void quantization() {
        List<Block> b = new ArrayList<>();
        for (Loaded<QuantizeEval.Result> l : data.quantize) {
            QuantizeEval.Result r = l.value();
            if (r.rows() == null || r.rows().isEmpty()) continue;
            Map<String, String> kv = new LinkedHashMap<>();
            kv.put("model", r.model());
            kv.put("head", r.head());
            kv.put("data", r.data());
            kv.put("calibration", calibration(r.calibration()));
            kv.put("backend", r.backend());
            kv.put("file", l.input().path());
            b.add(new KeyValues(data.quantize.size() > 1 ? r.model() + " [" + l.input().path() + "]" : null, kv));
            QuantizeEval.Row fp32 = r.rows().stream().filter(x -> x.scheme().equalsIgnoreCase("fp32")).findFirst().orElse(null);
            List<List<Object>> rows = new ArrayList<>(), speed = new ArrayList<>();
            for (QuantizeEval.Row x : r.rows()) {
                int kept = x.fp32Sites() == null ? 0 : x.fp32Sites().size();
                rows.add(row(x.scheme(), x.description(), x.n(), x.accuracy(), x.ciLow(), x.ciHigh(),
                        fp32 == null ? null : 100 * (x.accuracy() - fp32.accuracy()), x.agreement(), x.flips(), x.meanKl(), kept));
                speed.add(row(x.scheme(), x.examplesPerS(), fp32 == null || fp32.examplesPerS() <= 0 ? null : x.examplesPerS() / fp32.examplesPerS(),
                        x.poolPeakBytes()));
            }
            b.add(new Table("accuracy-" + idSeq, "Accuracy per scheme", List.of(Column.text("scheme"), Column.text("weights / activations"),
                    new Column("n", Format.INT), new Column("accuracy", Format.PERCENT), new Column("CI low", Format.PERCENT),
                    new Column("CI high", Format.PERCENT), new Column("Δ vs FP32 (points)", Format.FIXED1), new Column("agreement", Format.PERCENT),
                    new Column("flips", Format.INT), new Column("mean KL", Format.SCI), new Column("sites kept FP32", Format.INT)),
                    rows, "Same examples and the same FP32 head for every scheme. CI: 95% bootstrap. Agreement and flips: predictions "
                    + "compared with FP32's. Mean KL: KL(FP32 ‖ quantized) of the output distribution, averaged over examples."));
            add(b, Charts.accuracy("fig-accuracy-" + idSeq, "Accuracy per scheme" + suffix(data.quantize, l), r));
            for (QuantizeEval.Row x : r.rows()) {
                if (x.mixed() != null && x.fp32Sites() != null) {
                    b.add(Paragraph.of(String.format(Locale.ROOT, "%s keeps %d activation site(s) in FP32: %s. On the calibration sample: "
                                    + "FP32 %.1f%%, all quantized %.1f%%, mixed %.1f%%.", x.scheme(), x.fp32Sites().size(),
                            String.join(", ", x.fp32Sites()), 100 * x.mixed().fp32Accuracy(), 100 * x.mixed().quantizedAccuracy(),
                            100 * x.mixed().mixedAccuracy())));
                }
            }
            b.add(new Table("speed-" + idSeq, "Throughput and memory per scheme", List.of(Column.text("scheme"),
                    new Column("examples / s", Format.FIXED1), new Column("× FP32", Format.FIXED2), new Column("device pool peak (MiB)", Format.MIB)),
                    speed, "Throughput of the evaluation pass on " + r.backend() + ". Quantization here is simulated (quantize → dequantize "
                    + "in FP32), so this is the cost of the simulation, not the speed of INT8 kernels; see Latency and memory for those. "
                    + "Pool peak: on CUDA only."));
            idSeq++;
        }
        if (b.isEmpty()) {
            notShown.add("Quantization schemes: no quantize-eval results (qdrift quantize-eval --json FILE).");
            return;
        }
        sections.add(new Section("quantization", "Quantization schemes", b));
    }

    // ---- outliers ----

    private void outliers() {
        List<Block> b = new ArrayList<>();
        for (Loaded<OutlierData> l : data.outliers) {
            OutlierData o = l.value();
            String sfx = suffix(data.outliers, l);
            Map<String, String> kv = new LinkedHashMap<>();
            String task = o.selection().get("task");
            String title = data.outliers.size() > 1 ? o.model() + (task == null ? "" : " on " + task) + " [" + l.input().path() + "]" : null;
            kv.put("model", o.model() + (o.layers() > 0 ? String.format(" (%d layers, hidden %d)", o.layers(), o.hidden()) : ""));
            kv.put("data", o.selection().isEmpty() ? o.data() : selection(o.selection()));
            kv.put("measured", String.format(Locale.ROOT, "%,d inputs, %,d real tokens", o.inputs(), o.tokens()));
            kv.put("backend", o.backend());
            kv.put("file", l.input().path());
            b.add(new KeyValues(title, kv));
            if (!o.layerRows().isEmpty()) {
                List<List<Object>> rows = new ArrayList<>();
                for (OutlierData.LayerRow x : o.layerRows())
                    rows.add(row(x.layer() < 0 ? "embeddings" : Integer.toString(x.layer()), x.maxKurtosis(), x.maxKurtosisSite(),
                            x.maxEnergyShareTop1Percent(), x.maxEnergySite(), x.maxOverMedian(), x.outlierChannels(),
                            x.intermediateOutlierChannels(), x.topDims().isEmpty() ? "–" : x.topDims().toString().replaceAll("[\\[\\]]", "")));
                b.add(new Table("outlier-layers-" + idSeq, "Per layer", List.of(Column.text("layer"), new Column("max excess kurtosis", Format.FIXED1),
                        Column.text("at site"), new Column("max top-1% energy", Format.PERCENT), Column.text("at site"),
                        new Column("max |x| / median", Format.FIXED1), new Column("6σ hidden dims", Format.INT),
                        new Column("6σ FFN units", Format.INT), Column.text("top dims")), rows,
                        "Maxima over the activation sites of each layer. 6σ hidden dims: hidden dimensions whose max |x| exceeds 6σ "
                        + "at some hidden-size site; top dims: the largest of those by max |x| / σ."));
                double maxK = o.layerRows().stream().mapToDouble(OutlierData.LayerRow::maxKurtosis).filter(Double::isFinite).max().orElse(Double.NaN);
                double maxE = o.layerRows().stream().mapToDouble(OutlierData.LayerRow::maxEnergyShareTop1Percent).filter(Double::isFinite).max().orElse(Double.NaN);
                if (Double.isFinite(maxK) && Double.isFinite(maxE)) b.add(Paragraph.note(String.format(Locale.ROOT, "Here: excess kurtosis up to %.1f, up to %.1f%% of a site's energy in "
                        + "its top 1%% of channels. Published for BERT-base on QNLI (Bondarenko et al., 2021): kurtosis rising with depth "
                        + "to ≈ 271 and ≈ 55%% of the energy in the top 1%% of channels.", maxK, 100 * maxE)));
            }
            add(b, Charts.byDepth("fig-kurtosis-" + idSeq, "Excess kurtosis vs depth" + sfx, "excess kurtosis",
                    "Fisher excess kurtosis (0 for a normal distribution) of all elements of each activation site, per layer. "
                            + "Heavy tails are what per-tensor INT8 ranges cannot fit.", o.kurtosisByDepth()));
            if (o.kurtosisByDepth().isEmpty()) notShown.add("Kurtosis vs depth" + sfx + ": no per-layer kurtosis in " + l.input().path() + ".");
            add(b, Charts.byDepth("fig-energy-" + idSeq, "Top-1% energy share vs depth" + sfx, "share of sum x²",
                    "Share of each site's sum of squares held by its top 1% of channels (by sum of squares), per layer. "
                            + "A uniform spread would give 1%.", o.energyByDepth()));
            if (o.energyByDepth().isEmpty()) notShown.add("Energy share vs depth" + sfx + ": no per-layer energy shares in " + l.input().path() + ".");
            if (o.ranges() != null) {
                add(b, Charts.channelRanges("fig-ranges-" + idSeq, o.ranges(), pegK(o.ranges())));
            } else {
                notShown.add("Per-channel ranges" + sfx + ": no channelMin / channelMax in " + l.input().path() + ".");
            }
            if (!o.topOutliers().isEmpty()) {
                List<List<Object>> rows = new ArrayList<>();
                for (OutlierData.OutlierChannel c : o.topOutliers())
                    rows.add(row(c.key(), c.channel(), c.maxAbs(), c.overSigma(), c.overMedian(), c.tokenRate(), c.inputRate(),
                            triggers(c.hitsByCategory()), c.layersWithSameChannel().toString().replaceAll("[\\[\\]]", "")));
                b.add(new Table("outlier-channels-" + idSeq, "Strongest outlier channels", List.of(Column.text("site"),
                        new Column("channel", Format.INT), new Column("max |x|", Format.FIXED1), new Column("× σ", Format.FIXED1),
                        new Column("× median |x|", Format.FIXED1), new Column("token rate", Format.PERCENT), new Column("input rate", Format.PERCENT),
                        Column.text("fires on"), Column.text("same channel 6σ in layers")), rows,
                        "A channel fires on a token when |x| > 6σ of its site. Token rate: firing tokens / real tokens; input rate: inputs "
                        + "with at least one firing token. Fires on: share of its firing tokens per token kind."));
            }
            if (!o.definitions().isEmpty()) b.add(new KeyValues("Definitions", o.definitions()));
            idSeq++;
        }
        if (b.isEmpty()) {
            notShown.add("Activation outliers: no outliers results (qdrift outliers --out DIR writes outliers.json).");
            return;
        }
        sections.add(new Section("outliers", "Activation outliers", b));
    }

    private static final Pattern PEG = Pattern.compile("peg(\\d+)", Pattern.CASE_INSENSITIVE);

    /** The PEG K to colour by: the first pegK scheme evaluated in this directory, else the smallest K measured. */
    private String pegK(OutlierData.ChannelRanges r) {
        for (Loaded<QuantizeEval.Result> l : data.quantize)
            for (QuantizeEval.Row row : l.value().rows()) {
                Matcher m = PEG.matcher(row.scheme());
                if (m.matches() && r.pegGroups().containsKey(m.group(1))) return m.group(1);
            }
        return r.pegGroups().keySet().stream().min((a, b) -> Integer.compare(parse(a), parse(b))).orElse("3");
    }

    private static int parse(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return Integer.MAX_VALUE;
        }
    }

    /** "cls 62%, sep 30%": where an outlier channel fires, largest share first. */
    private static String triggers(Map<String, Long> hits) {
        long total = hits.values().stream().mapToLong(Long::longValue).sum();
        if (total == 0) return "–";
        return hits.entrySet().stream().filter(e -> e.getValue() > 0).sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(3)
                .map(e -> String.format(Locale.ROOT, "%s %.0f%%", e.getKey(), 100.0 * e.getValue() / total))
                .reduce((a, c) -> a + ", " + c).orElse("–");
    }

    // ---- drift ----

    private void drift() {
        List<Block> b = new ArrayList<>();
        for (Loaded<DriftData> l : data.drift) {
            DriftData d = l.value();
            Map<String, String> kv = new LinkedHashMap<>();
            kv.put("model", d.model());
            kv.put("head", d.head());
            kv.put("data", d.selection().isEmpty() ? d.data() : selection(d.selection()));
            kv.put("attribution", d.method());
            kv.put("explains", d.target());
            kv.put("file", l.input().path());
            kv.values().removeIf(java.util.Objects::isNull);
            b.add(new KeyValues(null, kv));
            driftTables(b, d);
            Map<String, double[]> points = new LinkedHashMap<>();
            for (DriftData.SchemeDrift s : d.schemes()) {
                double agreement = Double.isFinite(s.agreement()) ? s.agreement() : agreementFromQuantizeEval(s.scheme());
                if (!s.isReference() && Double.isFinite(agreement) && Double.isFinite(s.meanSpearman()))
                    points.put(s.scheme(), new double[] {agreement, s.meanSpearman()});
            }
            add(b, Charts.spearman("fig-spearman-" + idSeq, d));
            add(b, Charts.agreementVsSimilarity("fig-agreement-" + idSeq, points));
            add(b, Charts.logitShift("fig-logits-" + idSeq, d));
            if (!d.examples().isEmpty())
                b.add(new ReportModel.HeatMaps("Example sentences: token attributions", "Red: the token pushes towards the explained class; "
                        + "blue: against it. Each row is scaled by its own largest |attribution|; hover a token for its value.",
                        d.examples().subList(0, Math.min(HEAT_MAP_EXAMPLES, d.examples().size()))));
            idSeq++;
        }
        if (b.isEmpty()) {
            notShown.add("Attribution drift: no drift results (the drift run's aggregate JSON; its shape is documented in "
                    + "dev.qdrift.report.DriftData).");
            return;
        }
        sections.add(new Section("drift", "Attribution drift", b));
    }

    /** Display order of the drift metrics beyond Spearman, as the drift aggregate names them. */
    private static final List<String> DRIFT_METRICS = List.of("kendall", "top1", "top3", "top5", "sign", "cosine");

    /** Per scheme: agreement, the Spearman distribution, the other metrics' means; then the same by group of examples. */
    private void driftTables(List<Block> b, DriftData d) {
        if (d.schemes().isEmpty()) return;
        List<String> extra = DRIFT_METRICS.stream().filter(m -> d.schemes().stream().anyMatch(s -> s.metrics().containsKey(m))).toList();
        List<Column> cols = new ArrayList<>(List.of(Column.text("scheme"), new Column("examples", Format.INT), new Column("agreement", Format.PERCENT),
                new Column("flips", Format.INT), new Column("mean ρ", Format.FIXED3), new Column("ρ CI low", Format.FIXED3),
                new Column("ρ CI high", Format.FIXED3), new Column("median ρ", Format.FIXED3), new Column("min ρ", Format.FIXED3)));
        for (String m : extra) cols.add(new Column(m, Format.FIXED3));
        List<List<Object>> rows = new ArrayList<>();
        for (DriftData.SchemeDrift s : d.schemes()) {
            double[] rho = s.spearman().clone();
            Arrays.sort(rho);
            DriftData.Stat ci = s.metrics().get("spearman");
            double agreement = Double.isFinite(s.agreement()) ? s.agreement() : agreementFromQuantizeEval(s.scheme());
            List<Object> row = row(s.scheme(), s.n(), agreement, s.flips() < 0 ? null : s.flips(), s.meanSpearman(),
                    ci == null ? null : ci.ciLow(), ci == null ? null : ci.ciHigh(), rho.length == 0 ? null : rho[rho.length / 2],
                    rho.length == 0 ? null : rho[0]);
            for (String m : extra) row.add(s.metrics().containsKey(m) ? s.metrics().get(m).mean() : null);
            rows.add(row);
        }
        b.add(new Table("drift-" + idSeq, "Attribution similarity per scheme", cols, rows, "ρ: Spearman rank correlation of the "
                + "token attributions, FP32 vs the scheme, per example; CI: 95% bootstrap over examples. Further columns: means over "
                + "examples of the drift run's other similarity metrics (rank and top-k agreement, sign agreement, cosine)."));

        List<List<Object>> groups = new ArrayList<>();
        for (DriftData.SchemeDrift s : d.schemes()) {
            if (s.isReference()) continue;
            for (DriftData.Group g : s.groups()) {
                if (g.n() == 0) continue;
                DriftData.Stat rho = g.metrics().get("spearman");
                groups.add(row(s.scheme(), g.name(), g.n(), g.agreement(), g.flips() < 0 ? null : g.flips(), rho == null ? null : rho.mean(),
                        rho == null ? null : rho.ciLow(), rho == null ? null : rho.ciHigh()));
            }
        }
        if (!groups.isEmpty())
            b.add(new Table("drift-groups-" + idSeq, "By group of examples", List.of(Column.text("scheme"), Column.text("examples"),
                    new Column("n", Format.INT), new Column("agreement", Format.PERCENT), new Column("flips", Format.INT),
                    new Column("mean ρ", Format.FIXED3), new Column("ρ CI low", Format.FIXED3), new Column("ρ CI high", Format.FIXED3)),
                    groups, "Where the drift is: on examples FP32 gets right or wrong, per gold class, per sentence length."));
    }

    private double agreementFromQuantizeEval(String scheme) {
        for (Loaded<QuantizeEval.Result> l : data.quantize)
            for (QuantizeEval.Row row : l.value().rows()) if (row.scheme().equals(scheme)) return row.agreement();
        return Double.NaN;
    }

    // ---- latency ----

    private void latency() {
        List<Block> b = new ArrayList<>();
        Set<ReportData.TorchBench> usedTorch = new LinkedHashSet<>();
        // Benches of one model on one device in one folder are one campaign (a file per scheme): compared side by side.
        // Runs from other folders (other days, other builds) stay apart rather than being compared across.
        Map<String, List<Loaded<LatencyBench.Result>>> groups = new LinkedHashMap<>();
        for (Loaded<LatencyBench.Result> l : data.benches) {
            Path folder = Path.of(l.input().path()).getParent();
            groups.computeIfAbsent(l.value().model() + "\0" + l.value().device() + "\0" + folder, k -> new ArrayList<>()).add(l);
        }
        for (List<Loaded<LatencyBench.Result>> group : groups.values()) {
            // FP32 first: it is the baseline the others are read against (and sets the chart's shapes).
            group.sort(java.util.Comparator.comparing(l -> Charts.isFp32(l.value()) ? 0 : 1));
            LatencyBench.Result first = group.getFirst().value();
            ReportData.TorchBench torch = data.torchBenches.stream().map(Loaded::value)
                    .filter(t -> t.model() != null && t.model().equals(first.model())).findFirst().orElse(null);
            if (torch != null) usedTorch.add(torch);
            boolean several = group.size() > 1;
            LatencyBench.Result fp32 = group.stream().map(Loaded::value).filter(Charts::isFp32).findFirst().orElse(null);
            List<Column> cols = new ArrayList<>();
            if (several) cols.add(Column.text("scheme"));
            cols.addAll(List.of(new Column("batch", Format.INT), new Column("seq", Format.INT),
                    new Column("runs", Format.INT), new Column("median ms", Format.FIXED2), new Column("p10 ms", Format.FIXED2),
                    new Column("p90 ms", Format.FIXED2), new Column("sentences / s", Format.FIXED1), new Column("compute ms", Format.FIXED2),
                    new Column("CUDA graph ms", Format.FIXED2), new Column("pool peak MiB", Format.MIB), new Column("device used MiB", Format.MIB)));
            if (several && fp32 != null) cols.add(new Column("speed-up vs FP32", Format.FIXED2));
            if (torch != null) {
                cols.add(new Column("PyTorch fp32 ms", Format.FIXED2));
                cols.add(new Column("PyTorch fp16 ms", Format.FIXED2));
            }
            List<List<Object>> rows = new ArrayList<>();
            List<String> files = new ArrayList<>();
            for (Loaded<LatencyBench.Result> l : group) {
                files.add(l.input().path());
                for (LatencyBench.Row x : l.value().rows()) {
                    List<Object> row = new ArrayList<>();
                    if (several) row.add(Charts.schemeName(l.value()));
                    row.addAll(row(x.batch(), x.seq(), x.timedRuns(), x.medianMs(), x.p10Ms(), x.p90Ms(), x.sentencesPerS(),
                            x.computeMs(), x.graphMs(), x.poolPeakBytes(), x.deviceUsedBytes()));
                    if (several && fp32 != null) {
                        Double base = null;
                        for (LatencyBench.Row f : fp32.rows()) if (f.batch() == x.batch() && f.seq() == x.seq()) base = f.medianMs();
                        row.add(base == null ? null : base / x.medianMs());
                    }
                    if (torch != null) {
                        row.add(torchMs(torch, "float32", x.batch(), x.seq()));
                        row.add(torchMs(torch, "float16", x.batch(), x.seq()));
                    }
                    rows.add(row);
                }
            }
            String scheme = several || Charts.isFp32(first) ? "" : ", " + Charts.schemeName(first);
            b.add(new Table("bench-" + idSeq, first.model() + scheme + " on " + first.device(), cols, rows, "Timing: " + first.timing()
                    + " [" + String.join(", ", files) + (torch != null ? "; PyTorch: " + sourceOf(data.torchBenches, torch) : "") + "]. Median ms: a whole "
                    + "forward as a user runs it (inputs up, pooled embeddings down); compute: inputs already on the device; CUDA graph: "
                    + "the same replayed as one graph. Pool peak: the device pool's high-water mark; device used: the drop in free device "
                    + "memory. Benches run on random token ids at full length; quantized schemes are calibrated on random ids too."));
            add(b, Charts.throughput("fig-throughput-" + idSeq, group.stream().map(Loaded::value).toList(), torch));
            idSeq++;
        }
        for (Loaded<ReportData.TorchBench> l : data.torchBenches) {
            if (usedTorch.contains(l.value())) continue;
            List<List<Object>> rows = new ArrayList<>();
            for (ReportData.TorchRow t : l.value().rows()) rows.add(row(t.dtype(), t.batch(), t.seq(), t.medianMs()));
            b.add(new Table("torch-" + idSeq++, "PyTorch " + l.value().torch() + ", " + l.value().model() + " on " + l.value().device(),
                    List.of(Column.text("dtype"), new Column("batch", Format.INT), new Column("seq", Format.INT), new Column("median ms", Format.FIXED2)),
                    rows, "[" + l.input().path() + "]"));
        }
        integratedGradientsSpeed(b);
        for (Loaded<ReportData.CpuBench> l : data.cpuBenches) {
            ReportData.CpuBench c = l.value();
            List<List<Object>> rows = new ArrayList<>();
            c.msPerCall().forEach((impl, ms) -> rows.add(row(impl, ms, c.msError().get(impl))));
            b.add(new Table("cpu-bench-" + idSeq++, c.benchmark() == null ? "CPU benchmark" : c.benchmark(), List.of(Column.text("implementation"),
                    new Column("ms per call", Format.FIXED1), new Column("± (99.9%)", Format.FIXED1)), rows,
                    "JMH on " + c.device() + (c.jvm() == null ? "" : ", " + c.jvm()) + (c.date() == null ? "" : ", " + c.date()) + " [" + l.input().path() + "]."));
        }
        if (b.isEmpty()) {
            notShown.add("Latency and memory: no bench results (qdrift bench [--ig-steps N] --json FILE).");
            return;
        }
        sections.add(new Section("latency", "Latency and memory", b));
    }

    /** IG throughput (qdrift bench --ig-steps), with PyTorch autograd's IG of the same model, steps and length where given. */
    private void integratedGradientsSpeed(List<Block> b) {
        Set<ReportData.TorchIgBench> used = new LinkedHashSet<>();
        for (Loaded<IgBench.Result> l : data.igBenches) {
            IgBench.Result r = l.value();
            IgBench.Row first = r.rows().getFirst();
            ReportData.TorchIgBench torch = data.torchIgBenches.stream().map(Loaded::value).filter(t -> r.model().equals(t.model())
                    && t.steps() == first.steps() && t.seq() == first.seq()).findFirst().orElse(null);
            List<Column> cols = new ArrayList<>(List.of(Column.text("scheme"), new Column("steps", Format.INT), new Column("seq", Format.INT),
                    new Column("ms per IG", Format.FIXED2), new Column("p90 ms", Format.FIXED2), new Column("sequences / s", Format.FIXED1),
                    new Column("TFLOPS", Format.FIXED1), new Column("pool peak MiB", Format.MIB), new Column("graph peak MiB", Format.MIB),
                    new Column("IG vs true FP32", Format.SCI)));
            if (torch != null) {
                used.add(torch);
                for (String dtype : torch.msPerIg().keySet()) cols.add(new Column("× PyTorch " + dtype, Format.FIXED2));
            }
            List<List<Object>> rows = new ArrayList<>();
            for (IgBench.Row x : r.rows()) {
                List<Object> row = new ArrayList<>(row(x.scheme(), x.steps(), x.seq(), x.msPerIg(), x.p90Ms(), x.sequencesPerS(), x.tflops(),
                        x.poolPeakBytes(), x.graphPeakBytes(), x.tf32Error()));
                if (torch != null) for (double ms : torch.msPerIg().values()) row.add(ms / x.msPerIg());
                rows.add(row);
            }
            b.add(new Table("ig-bench-" + idSeq++, "Integrated Gradients, " + r.model() + " on " + r.device(), cols, rows, "One IG of "
                    + first.steps() + " steps per " + first.seq() + "-token sequence, all steps in one device batch; timing: " + r.timing()
                    + " [" + l.input().path() + (torch != null ? "; PyTorch: " + sourceOf(data.torchIgBenches, torch) : "") + "]. TFLOPS: the IG's "
                    + "floating-point work (forward and input-gradient products) over its time. Graph peak: the memory CUDA holds for the "
                    + "replayed IG's buffers, outside the pool (– in results from before the IG was replayed). IG vs true FP32: for TF32 rows, the relative "
                    + "2-norm difference of the IG from the same IG in FP32. × PyTorch: PyTorch's time over ours (above 1: we are faster)."));
        }
        for (Loaded<ReportData.TorchIgBench> l : data.torchIgBenches) {
            if (used.contains(l.value())) continue;
            List<List<Object>> rows = new ArrayList<>();
            l.value().msPerIg().forEach((dtype, ms) -> rows.add(row(dtype, l.value().steps(), l.value().seq(), ms)));
            b.add(new Table("torch-ig-" + idSeq++, "PyTorch " + l.value().torch() + " IG, " + l.value().model() + " on " + l.value().device(),
                    List.of(Column.text("dtype"), new Column("steps", Format.INT), new Column("seq", Format.INT), new Column("ms per IG", Format.FIXED2)),
                    rows, "[" + l.input().path() + "]"));
        }
    }

    private static Double torchMs(ReportData.TorchBench t, String dtype, int batch, int seq) {
        for (ReportData.TorchRow r : t.rows()) if (dtype.equals(r.dtype()) && r.batch() == batch && r.seq() == seq) return r.medianMs();
        return null;
    }

    /** The file a loaded result came from. */
    private static <T> String sourceOf(List<Loaded<T>> all, T t) {
        return all.stream().filter(l -> l.value() == t).map(l -> l.input().path()).findFirst().orElse("?");
    }

    // ---- helpers ----

    private void add(List<Block> blocks, Figure f) {
        if (f != null) blocks.add(f);
    }

    /** " (file)" when there are several results of a kind, so their charts can be told apart. */
    private static <T> String suffix(List<Loaded<T>> all, Loaded<T> one) {
        return all.size() > 1 ? " [" + one.input().path() + "]" : "";
    }

    /** "256 examples of train.tsv, seed 20261123, file calib.json": the rest is in the provenance section. */
    private static String calibration(Map<String, String> c) {
        if (c == null || c.isEmpty()) return "–";
        StringBuilder b = new StringBuilder(c.getOrDefault("examples", "?")).append(" examples of ").append(c.getOrDefault("data", "?"));
        if (c.get("seed") != null) b.append(", seed ").append(c.get("seed"));
        if (c.get("file") != null) b.append(", file ").append(c.get("file"));
        return b.append(" (see Provenance)").toString();
    }

    private static String selection(Map<String, String> sel) {
        if (sel == null || sel.isEmpty()) return "–";
        StringBuilder b = new StringBuilder(sel.getOrDefault("data", "?"));
        sel.forEach((k, v) -> {
            if (!k.equals("data")) b.append(", ").append(k).append(' ').append(v);
        });
        return b.toString();
    }

    private static String label(List<String> labels, int i) {
        return labels != null && i < labels.size() ? labels.get(i) : "class " + i;
    }

    private static Double at(double[] a, int i) {
        return a == null || i >= a.length ? null : a[i];
    }

    /** A table row; a mutable list so callers can append optional columns. */
    private static List<Object> row(Object... cells) {
        return new ArrayList<>(Arrays.asList(cells));
    }
}
