package dev.qdrift.experiment;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.qdrift.metrics.Classification;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;
import org.apache.commons.math3.random.MersenneTwister;
import org.apache.commons.math3.stat.descriptive.rank.Percentile;

/**
 * The aggregate of a drift run ({@code aggregate.json}): per scheme, the mean of each per-example drift
 * metric with a 95% percentile-bootstrap CI (examples resampled with replacement, seeded), agreement
 * with FP32's predictions (with its bootstrap CI) and flips, the mean |IG completeness delta|, the mean
 * logit-shift correlation (occlusion) — over all examples, and broken down by whether FP32 predicted
 * the gold class, by gold class, and by sentence length in words ({@link DriftRecord#lengthBucket}).
 * A metric that is undefined on an example (null in the JSONL: a one-word sentence has no rank
 * correlation) is left out of that metric's mean; its n says how many examples it averages.
 *
 * <p>The document is also what {@code qdrift report} reads as drift data ({@code report.DriftData}):
 * kind "qdrift-drift", per scheme "spearman" (the defined per-example values), "agreement" and
 * "logitShift" (per example, the target class's logit in FP32 and in the scheme), and "examples" with
 * word-level attributions per scheme for heat maps.
 */
public final class DriftAggregate {
    public static final int RESAMPLES = 1000;
    public static final double LEVEL = 0.95;
    public static final long SEED = Evaluation.BOOTSTRAP_SEED;
    /** Examples (the first by rank with every scheme done) carried into the aggregate with their attributions, for heat maps. */
    public static final int HEAT_MAP_EXAMPLES = 12;

    /** The per-example metrics averaged, and how each is read from a record. */
    public static final Map<String, Function<DriftRecord, Double>> METRICS = metrics();

    private static Map<String, Function<DriftRecord, Double>> metrics() {
        Map<String, Function<DriftRecord, Double>> m = new LinkedHashMap<>();
        m.put("spearman", DriftRecord::spearman);
        m.put("kendall", DriftRecord::kendall);
        m.put("top1", DriftRecord::top1);
        m.put("top3", DriftRecord::top3);
        m.put("top5", DriftRecord::top5);
        m.put("sign", DriftRecord::sign);
        m.put("cosine", DriftRecord::cosine);
        return m;
    }

    private DriftAggregate() {}

    /** A mean with its bootstrap CI over the n examples where the value is defined; all null when n = 0. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record Stat(Double mean, Double ciLow, Double ciHigh, int n) {}

    /**
     * @param agreement fraction of examples where the scheme predicts FP32's class; flips the others
     * @param accuracy fraction where the scheme predicts the gold class
     * @param absDelta IG only: |completeness delta| of the scheme
     * @param logitShiftCorrelation occlusion only
     * @param igSteps IG's adaptive mode only (--ig-tolerance): the steps the lines took; converged: the share whose |delta|
     *     reached the tolerance
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Group(int n, Map<String, Stat> metrics, Double agreement, Double agreementCiLow, Double agreementCiHigh, int flips,
                        Double accuracy, Stat absDelta, Stat logitShiftCorrelation, Stat igSteps, Double converged) {}

    public record LogitShift(double[] fp32, double[] quantized) {}

    /**
     * @param spearman the defined per-example Spearman correlations, in rank order (the report's histogram)
     * @param byCorrectness keys "correct" / "incorrect": whether FP32 predicted the gold class
     * @param byClass by gold class name; byLength by {@link DriftRecord#LENGTH_BUCKETS}
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record SchemeResult(String scheme, String description, List<String> fp32Sites, int n, double[] spearman, Double agreement,
                               int flips, Group all, Map<String, Group> byCorrectness, Map<String, Group> byClass,
                               Map<String, Group> byLength, LogitShift logitShift) {}

    /** A sentence with its word-level attributions per scheme ("fp32" first) and each scheme's prediction. */
    public record Example(String text, String label, List<String> tokens, Map<String, double[]> attributions, Map<String, String> predicted) {}

    /** What the run was, for the document's header; device: where its last part ran (a run may resume elsewhere). */
    public record Header(String model, String head, String data, String method, String target, String device,
                         Map<String, String> selection, Map<String, String> schemeDescriptions, Map<String, List<String>> fp32Sites) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Result(String kind, String model, String head, String data, String method, String target, String device,
                         Map<String, String> selection,
                         int n, Map<String, Object> bootstrap, List<SchemeResult> schemes, List<Example> examples) {}

    /**
     * @param records one per (example, scheme), the FP32 reference among them as scheme "fp32"
     * @param schemes scheme names in table order
     * @param labelNames class names by index
     */
    public static Result aggregate(List<DriftRecord> records, List<String> schemes, List<String> labelNames, Header header) {
        Map<String, List<DriftRecord>> byScheme = new LinkedHashMap<>();
        for (String s : schemes) byScheme.put(s, new ArrayList<>());
        for (DriftRecord r : records) if (byScheme.containsKey(r.scheme())) byScheme.get(r.scheme()).add(r);
        byScheme.values().forEach(l -> l.sort(Comparator.comparingInt(DriftRecord::rank)));
        List<SchemeResult> out = new ArrayList<>();
        for (String s : schemes) {
            List<DriftRecord> rs = byScheme.get(s);
            Map<String, Group> correctness = new LinkedHashMap<>();
            correctness.put("correct", group(rs, DriftRecord::fp32Correct));
            correctness.put("incorrect", group(rs, r -> !r.fp32Correct()));
            Map<String, Group> byClass = new LinkedHashMap<>();
            for (int c = 0; c < labelNames.size(); c++) {
                int cc = c;
                byClass.put(labelNames.get(c), group(rs, r -> r.gold() == cc));
            }
            Map<String, Group> byLength = new LinkedHashMap<>();
            for (String b : DriftRecord.LENGTH_BUCKETS) byLength.put(b, group(rs, r -> DriftRecord.lengthBucket(r.words()).equals(b)));
            Group all = group(rs, r -> true);
            double[] rho = rs.stream().map(DriftRecord::spearman).filter(v -> v != null).mapToDouble(Double::doubleValue).toArray();
            LogitShift shift = new LogitShift(rs.stream().mapToDouble(DriftRecord::fp32TargetLogit).toArray(),
                    rs.stream().mapToDouble(DriftRecord::targetLogit).toArray());
            out.add(new SchemeResult(s, header.schemeDescriptions().get(s), header.fp32Sites().get(s), rs.size(), rho, all.agreement(),
                    all.flips(), all, correctness, byClass, byLength, shift));
        }
        Map<String, Object> bootstrap = new LinkedHashMap<>();
        bootstrap.put("resamples", RESAMPLES);
        bootstrap.put("level", LEVEL);
        bootstrap.put("seed", SEED);
        bootstrap.put("method", "percentile bootstrap over examples, resampled with replacement");
        int n = byScheme.isEmpty() ? 0 : byScheme.values().stream().mapToInt(List::size).max().orElse(0);
        return new Result("qdrift-drift", header.model(), header.head(), header.data(), header.method(), header.target(), header.device(),
                header.selection(),
                n, bootstrap, out, heatMapExamples(byScheme, schemes, labelNames));
    }

    static Group group(List<DriftRecord> all, Predicate<DriftRecord> in) {
        List<DriftRecord> rs = all.stream().filter(in).toList();
        Map<String, Stat> metrics = new LinkedHashMap<>();
        METRICS.forEach((name, get) -> metrics.put(name, stat(rs.stream().map(get).toList())));
        if (rs.isEmpty()) return new Group(0, metrics, null, null, null, 0, null, null, null, null, null);
        boolean[] agree = new boolean[rs.size()];
        int flips = 0, correct = 0;
        for (int i = 0; i < rs.size(); i++) {
            agree[i] = rs.get(i).agree();
            if (!agree[i]) flips++;
            if (rs.get(i).predicted() == rs.get(i).gold()) correct++;
        }
        double[] ci = Classification.bootstrapProportionCi(agree, RESAMPLES, LEVEL, SEED);
        boolean ig = rs.stream().anyMatch(r -> r.delta() != null);
        boolean occlusion = rs.stream().anyMatch(r -> r.logitShift() != null);
        Stat absDelta = ig ? stat(rs.stream().map(r -> r.delta() == null ? null : Math.abs(r.delta())).toList()) : null;
        Stat shift = occlusion ? stat(rs.stream().map(DriftRecord::logitShiftCorrelation).toList()) : null;
        boolean adaptive = rs.stream().anyMatch(r -> r.converged() != null);
        Stat steps = adaptive ? stat(rs.stream().map(r -> r.igSteps() == null ? null : (double) r.igSteps()).toList()) : null;
        Double converged = adaptive ? rs.stream().filter(r -> Boolean.TRUE.equals(r.converged())).count() / (double) rs.size() : null;
        return new Group(rs.size(), metrics, (double) (rs.size() - flips) / rs.size(), ci[0], ci[1], flips, (double) correct / rs.size(),
                absDelta, shift, steps, converged);
    }

    /** Mean and bootstrap CI of the non-null values. */
    static Stat stat(List<Double> values) {
        double[] v = values.stream().filter(x -> x != null && !x.isNaN()).mapToDouble(Double::doubleValue).toArray();
        if (v.length == 0) return new Stat(null, null, null, 0);
        double[] ci = bootstrapMeanCi(v, RESAMPLES, LEVEL, SEED);
        return new Stat(mean(v), ci[0], ci[1], v.length);
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    /**
     * Percentile-bootstrap CI of the mean: resample the values with replacement {@code resamples}
     * times (Mersenne Twister, seeded, as {@link Classification#bootstrapProportionCi}), take the
     * (1-level)/2 and (1+level)/2 percentiles of the resampled means.
     */
    public static double[] bootstrapMeanCi(double[] values, int resamples, double level, long seed) {
        if (values.length == 0) throw new IllegalArgumentException("no values");
        int n = values.length;
        MersenneTwister rng = new MersenneTwister(seed);
        double[] means = new double[resamples];
        for (int r = 0; r < resamples; r++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += values[rng.nextInt(n)];
            means[r] = s / n;
        }
        Percentile p = new Percentile();
        p.setData(means);
        double tail = (1 - level) / 2 * 100;
        return new double[] {p.evaluate(tail), p.evaluate(100 - tail)};
    }

    private static List<Example> heatMapExamples(Map<String, List<DriftRecord>> byScheme, List<String> schemes, List<String> labelNames) {
        List<DriftRecord> ref = byScheme.getOrDefault(DriftRun.REFERENCE, List.of());
        List<Example> out = new ArrayList<>();
        for (DriftRecord f : ref) {
            if (out.size() == HEAT_MAP_EXAMPLES) break;
            Map<String, double[]> attributions = new LinkedHashMap<>();
            Map<String, String> predicted = new LinkedHashMap<>();
            for (String s : schemes) {
                DriftRecord r = byScheme.get(s).stream().filter(x -> x.example() == f.example()).findFirst().orElse(null);
                if (r == null) break;
                attributions.put(s, r.scores());
                predicted.put(s, label(labelNames, r.predicted()));
            }
            if (attributions.size() < schemes.size()) continue;
            String text = f.textPair() == null ? f.text() : f.text() + " [SEP] " + f.textPair();
            out.add(new Example(text, label(labelNames, f.gold()), f.wordTexts(), attributions, predicted));
        }
        return out;
    }

    private static String label(List<String> names, int c) {
        return c >= 0 && c < names.size() ? names.get(c) : Integer.toString(c);
    }

    // ---- the terminal table ----------------------------------------------------------------------

    /** One line per scheme, then per quantized scheme a short breakdown by FP32 correctness, gold class and length. */
    public static void print(Result r, PrintStream out) {
        out.printf("%-12s %4s %7s %5s  %-22s %7s %6s %6s %6s %6s %7s %9s%n", "scheme", "n", "agree", "flips", "spearman [95% CI]", "kendall",
                "top1", "top3", "top5", "sign", "cosine", extraHeader(r));
        for (SchemeResult s : r.schemes()) out.println(row(s.scheme(), s.all()));
        for (SchemeResult s : r.schemes())
            if (s.all().converged() != null)
                out.printf("adaptive IG, %-8s %.1f%% of lines reached the tolerance; steps %.1f on average%n", s.scheme(),
                        100 * s.all().converged(), s.all().igSteps().mean());
        for (SchemeResult s : r.schemes()) {
            if (s.scheme().equals(DriftRun.REFERENCE)) continue;
            out.printf("%n%s by group:%n", s.scheme());
            Map<String, Group> groups = new LinkedHashMap<>();
            s.byCorrectness().forEach((k, g) -> groups.put("fp32 " + k, g));
            s.byClass().forEach((k, g) -> groups.put("gold " + k, g));
            s.byLength().forEach((k, g) -> groups.put(k + " words", g));
            groups.forEach((k, g) -> {
                if (g.n() > 0) out.println(row("  " + k, g));
            });
        }
    }

    private static String extraHeader(Result r) {
        boolean ig = r.schemes().stream().anyMatch(s -> s.all().absDelta() != null);
        boolean occ = r.schemes().stream().anyMatch(s -> s.all().logitShiftCorrelation() != null);
        return ig ? "|IG delta|" : occ ? "shift r" : "";
    }

    private static String row(String name, Group g) {
        Stat rho = g.metrics().get("spearman");
        String extra = g.absDelta() != null ? fmt(g.absDelta().mean(), "%9.2e") : g.logitShiftCorrelation() != null
                ? fmt(g.logitShiftCorrelation().mean(), "%9.3f") : "";
        return String.format("%-12s %4d %7s %5d  %-22s %7s %6s %6s %6s %6s %7s %9s", name, g.n(), fmt(g.agreement(), "%.3f"), g.flips(),
                rho.mean() == null ? "-" : String.format("%.3f [%.3f, %.3f]", rho.mean(), rho.ciLow(), rho.ciHigh()),
                fmt(g.metrics().get("kendall").mean(), "%.3f"), fmt(g.metrics().get("top1").mean(), "%.3f"),
                fmt(g.metrics().get("top3").mean(), "%.3f"), fmt(g.metrics().get("top5").mean(), "%.3f"),
                fmt(g.metrics().get("sign").mean(), "%.3f"), fmt(g.metrics().get("cosine").mean(), "%.3f"), extra);
    }

    private static String fmt(Double v, String f) {
        return v == null ? "-" : String.format(f, v);
    }
}
