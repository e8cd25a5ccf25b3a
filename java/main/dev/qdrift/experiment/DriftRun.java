package dev.qdrift.experiment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.QdriftException;
import dev.qdrift.attribution.AttributionDrift;
import dev.qdrift.attribution.Attributions;
import dev.qdrift.attribution.Baseline;
import dev.qdrift.attribution.AttributionModel;
import dev.qdrift.attribution.Quadrature;
import dev.qdrift.attribution.QuantizedGradients;
import dev.qdrift.attribution.Sequence;
import dev.qdrift.attribution.StraightThrough;
import dev.qdrift.attribution.Target;
import dev.qdrift.attribution.TokenScores;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.backend.cuda.CudaBackend;
import dev.qdrift.backend.cuda.Int8Gemm;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.Example;
import dev.qdrift.data.Task;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.MixedPrecision;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.IntStream;
import org.apache.commons.math3.stat.correlation.PearsonsCorrelation;

/**
 * The attribution-drift experiment ({@code qdrift drift}): for each example of the evaluation set,
 * token attributions of the FP32 model and of each quantization scheme's model, word-level, compared.
 *
 * <p>Target: the logit of the class the FP32 model predicts on the example ({@code Target.logit(c)},
 * c = argmax of the FP32 logits), explained for every scheme — the same class — so the attributions
 * answer the same question and are comparable even where a scheme's prediction flips. Attributions
 * through quantized models use the straight-through estimator ({@link StraightThrough}; see
 * {@code attribution.Gradients} for exactly what gradient that is), on the CPU in float64 or, with
 * device cuda, in float32 on the GPU ({@code attribution.BackendGradients}, IG's steps batched there).
 *
 * <p>Examples: the held-out side of the split the head recorded when it was trained on a split of the
 * same file (as {@code quantize-eval}), else the whole file; a run takes them in a seeded,
 * class-stratified order (each class shuffled, the classes interleaved in proportion), so --limit N
 * takes a stratified sample and a larger N extends a smaller one.
 *
 * <p>Files in the output directory: {@code run.json} (the arguments that define the experiment, and
 * SHA-256 hashes of the model's weights, the head file, the evaluation examples and the calibration
 * statistics), {@code examples.jsonl} (one {@link DriftRecord} per (example, scheme), appended and
 * flushed line by line) and {@code aggregate.json} ({@link DriftAggregate}). A run restarted in the
 * same directory with the same arguments (--limit may differ) skips the (example, scheme) lines
 * already written and redoes a partial last line a kill left behind; with other arguments it refuses.
 */
public final class DriftRun {
    /** The reference scheme; always computed (and written) first for each example. */
    public static final String REFERENCE = "fp32";
    public static final String RUN_FILE = "run.json", EXAMPLES_FILE = "examples.jsonl", AGGREGATE_FILE = "aggregate.json";
    public static final String TARGET = "logit of the class the FP32 model predicts on the example (the same class for every scheme)";

    public enum Method {
        IG("integrated gradients"), SALIENCY("saliency (L2 norm of the gradient per token)"), GXI("gradient x input"),
        OCCLUSION("occlusion by token deletion (fall of the target logit)");

        final String description;

        Method(String description) {
            this.description = description;
        }

        public static Method parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new QdriftException("unknown --method '" + s + "': use ig, saliency, gxi or occlusion");
            }
        }
    }

    /**
     * The arguments that define the experiment, as written to run.json (--limit and --out are not among them).
     *
     * @param schemes scheme names (presets or .json files); {@link #normalized} puts "fp32" first
     * @param baseline IG: pad, zero or mask; rule: IG's quadrature (gauss-legendre, middle, left, right, trapezoid)
     * @param straightThrough ste or clip-aware
     * @param calibration calibration statistics file (loaded if it exists, else written), or null
     * @param device where gradients are computed: cpu (float64 backward, the reference) or cuda (float32 on the GPU)
     * @param int8 cuda only: schemes that can run their forward linear layers on the s8 kernels do
     * @param tf32 cuda only: the FP32 matrix products (forward and backward) on TF32 tensor cores
     * @param fp16Backward cuda only: the backward's input-gradient products with FP16 operands (CudaBackend#useHalfProducts)
     * @param int8Gemm with int8: where the s8 linear layers multiply, ours (fused epilogues) or cublaslt (+ a dequantize
     *     pass); the outputs are bit-identical, recorded so that the run says which ran
     * @param igTolerance IG's adaptive mode (null: off): steps doubled from `steps` until |completeness delta| <= this,
     *     at most maxSteps (null: 16 x steps); each line records the steps it used and whether it got there
     * @param float32 gradient methods only: on the CPU, float32 on the CPU backend (the GPU path's code and arithmetic) instead
     *     of the float64 reference; dropped by {@link #normalized} on the GPU, whose gradients are float32
     */
    public record Config(String model, int maxLength, int batchSize, String head, String data, String task, Double split, long seed,
                         List<String> schemes, String method, int steps, String baseline, String rule, String straightThrough,
                         int calibSize, String calibration, double mixedBudget, String device, boolean int8, boolean tf32,
                         boolean fp16Backward, String int8Gemm, Double igTolerance, Integer maxSteps, boolean float32) {

        public Config {
            schemes = List.copyOf(schemes);
        }

        /** Options checked, spelled canonically, "fp32" first in the schemes. */
        public Config normalized() {
            List<String> s = new ArrayList<>();
            s.add(REFERENCE);
            for (String x : schemes) {
                String t = x.trim();
                if (t.isEmpty() || t.equals(REFERENCE)) continue;
                if (s.contains(t)) throw new QdriftException("scheme '" + t + "' is given twice in --schemes");
                s.add(t);
            }
            Method m = Method.parse(method);
            if (steps < 1) throw new QdriftException("--steps must be at least 1, got " + steps);
            String b = baseline.trim().toLowerCase(Locale.ROOT);
            if (!List.of("pad", "zero", "mask").contains(b)) throw new QdriftException("unknown --baseline '" + baseline + "': use pad, zero or mask");
            String r = DriftRun.rule(rule).name().toLowerCase(Locale.ROOT).replace('_', '-');
            String st = DriftRun.straightThrough(straightThrough) == StraightThrough.STE ? "ste" : "clip-aware";
            String d = device == null ? "cpu" : device.trim().toLowerCase(Locale.ROOT);
            if (!List.of("cpu", "cuda").contains(d)) throw new QdriftException("unknown device '" + device + "': use cpu or cuda");
            if (int8 && !d.equals("cuda")) throw new QdriftException("--int8 needs --device cuda: the s8 kernels run on the GPU");
            if (tf32 && !d.equals("cuda")) throw new QdriftException("--tf32 needs --device cuda: the CPU computes in FP32 only");
            if (fp16Backward && !d.equals("cuda"))
                throw new QdriftException("--fp16-backward needs --device cuda: the CPU computes its gradients in float64 (or float32)");
            if (fp16Backward && m == Method.OCCLUSION)
                throw new QdriftException("--fp16-backward changes gradients, and occlusion computes none: drop it or use another --method");
            if (float32 && m == Method.OCCLUSION)
                throw new QdriftException("--float32 chooses how gradients are computed, and occlusion computes none (its forwards are float32 "
                        + "already): drop it or use another --method");
            String g = Int8Gemm.parse(int8Gemm).flag();
            if (g.equals(Int8Gemm.CUBLASLT.flag()) && !int8)
                throw new QdriftException("--int8-gemm cublaslt changes only the s8 linear layers, which run with --int8: add --int8");
            Integer max = null;
            if (igTolerance != null) {
                if (m != Method.IG) throw new QdriftException("--ig-tolerance is Integrated Gradients' adaptive mode: use it with --method ig");
                if (!(igTolerance > 0)) throw new QdriftException("--ig-tolerance must be positive, got " + igTolerance);
                max = maxSteps == null ? 16 * steps : maxSteps;
                if (max < steps) throw new QdriftException("--max-steps " + max + " is below --steps " + steps);
            } else if (maxSteps != null) {
                throw new QdriftException("--max-steps bounds the adaptive mode: give --ig-tolerance too");
            }
            return new Config(model, maxLength, batchSize, head, data, task, split, seed, s, m.name().toLowerCase(Locale.ROOT), steps, b, r,
                    st, calibSize, calibration, mixedBudget, d, int8, tf32, fp16Backward, g, igTolerance, max,
                    float32 && d.equals("cpu")); // the GPU's gradients are float32 anyway (--device auto may pick either)
        }

        public String describeMethod() {
            Method m = Method.parse(method);
            String s = m.description;
            if (m == Method.IG) s += ", " + (igTolerance == null ? steps + " steps" : "adaptive: " + steps + " steps doubled until |delta| <= "
                    + igTolerance + ", at most " + maxSteps) + " (" + rule + "), " + baseline + " baseline (special tokens keep their vectors)";
            s += "; word level (wordpieces summed, special tokens excluded); " + straightThrough + " through quantized sites";
            String products = (tf32 ? " (matrix products on TF32 tensor cores)" : "")
                    + (fp16Backward ? " (the backward's input-gradient products with FP16 operands)" : "");
            if (m == Method.OCCLUSION) return s + "; forward passes in float32 on the " + (device.equals("cuda") ? "GPU" + products : "CPU");
            return s + (device.equals("cuda") ? "; gradients in float32 on the GPU" + products
                    + (int8 ? ", forward on the s8 kernels where the scheme allows"
                            + ("cublaslt".equals(int8Gemm) ? " (their GEMMs on cuBLASLt, then a dequantize pass)" : "") : "")
                    : float32 ? "; gradients in float32 on the CPU backend (the GPU's arithmetic)" : "; gradients in float64 on the CPU");
        }
    }

    static Quadrature.Rule rule(String s) {
        try {
            return Quadrature.Rule.valueOf(s.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new QdriftException("unknown --rule '" + s + "': use gauss-legendre, middle, left, right or trapezoid");
        }
    }

    static StraightThrough straightThrough(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "ste" -> StraightThrough.STE;
            case "clip-aware", "clip_aware" -> StraightThrough.CLIP_AWARE;
            default -> throw new QdriftException("unknown --straight-through '" + s + "': use ste or clip-aware");
        };
    }

    /**
     * @param examples examples in this run's selection; linesWritten / linesSkipped: lines appended now / found done
     * @param droppedBytes a partial last line cut off the file before resuming
     */
    public record Outcome(DriftAggregate.Result aggregate, int examples, int linesWritten, int linesSkipped, long droppedBytes,
                          Map<String, Set<String>> fp32Sites) {}

    /**
     * One model's attribution of one example.
     *
     * @param igSteps IG's steps (the adaptive mode's last round), converged: whether |delta| reached the tolerance (adaptive only)
     */
    private record Attribution(double[] logits, double[] words, Double targetAtInput, Double targetAtBaseline, Double delta,
                               double[] logitShift, Integer igSteps, Boolean converged, double seconds) {}

    private final Config config;
    private final Model model;
    private final PrintStream log;
    /** Where gradients (and calibration, and occlusion's forwards) run: the GPU, the CPU backend under --float32, else null (float64). */
    private final Backend backend;

    /**
     * @param model the model config.model() names, loaded with config.maxLength() (the caller loads it, so tests can share one)
     * @param log where the run reports what it does (the progress bar goes to stderr)
     * @param backend the backend gradients run on (the caller owns it): the GPU's when config.device() is cuda, a CPU backend when
     *     config.float32(), else null
     */
    public DriftRun(Config config, Model model, PrintStream log, Backend backend) {
        this.config = config.normalized();
        this.model = model;
        this.log = log;
        this.backend = backend;
        if (this.config.device().equals("cuda") != backend instanceof CudaBackend)
            throw new IllegalArgumentException("device " + this.config.device() + " but " + (backend instanceof CudaBackend ? "a" : "no")
                    + " GPU backend given");
        if (this.config.float32() != backend instanceof CpuBackend)
            throw new IllegalArgumentException("float32 " + this.config.float32() + " but " + (backend instanceof CpuBackend ? "a" : "no")
                    + " CPU backend given");
        if (backend instanceof CudaBackend c && c.tf32() != this.config.tf32())
            throw new IllegalArgumentException("tf32 " + this.config.tf32() + " but the GPU backend's TF32 mode is " + c.tf32());
        if (backend instanceof CudaBackend c && c.halfProducts() != this.config.fp16Backward())
            throw new IllegalArgumentException("fp16Backward " + this.config.fp16Backward() + " but the GPU backend's FP16 backward products are "
                    + (c.halfProducts() ? "on" : "off"));
        if (backend instanceof CudaBackend c && c.cublasLtInt8() != this.config.int8Gemm().equals("cublaslt"))
            throw new IllegalArgumentException("int8Gemm " + this.config.int8Gemm() + " but the GPU backend's s8 GEMMs "
                    + (c.cublasLtInt8() ? "run on cuBLASLt" : "are ours"));
    }

    public Config config() {
        return config;
    }

    /** Runs (or resumes) the experiment on the first limit examples of the order (all when null) into dir. */
    public Outcome run(Integer limit, Path dir) {
        if (limit != null && limit < 1) throw new QdriftException("--limit must be at least 1, got " + limit);
        Method method = Method.parse(config.method());
        List<Scheme> schemes = Scheme.parseList(String.join(",", config.schemes()));
        Set<String> names = new HashSet<>();
        for (Scheme s : schemes)
            if (!names.add(s.name())) throw new QdriftException("two schemes are named '" + s.name() + "' in --schemes");
        Path headFile = Path.of(config.head());
        LinearHead head = LinearHead.load(headFile);
        head.checkDim(model.config().hidden(), model.id());
        DataSelection given = new DataSelection(config.data(), Task.parse(config.task()), null, config.split(), config.seed());
        DataSelection selection = RunInputs.evaluationSelection(head, given);
        Dataset eval = selection.evaluationSet();
        if (head.numClasses() != eval.numClasses())
            throw new QdriftException("head has " + head.numClasses() + " classes " + head.labelNames() + " but " + eval.source() + " has "
                    + eval.numClasses() + " " + eval.labelNames());
        int[] order = order(eval, config.seed());
        int n = limit == null ? eval.size() : Math.min(limit, eval.size());

        // run.json: refuse to mix experiments in one directory.
        Map<String, String> hashes = new LinkedHashMap<>();
        hashes.put("model", RunInputs.hash(model.weights()));
        hashes.put("head", RunInputs.hash(headFile));
        hashes.put("data", RunInputs.hash(eval));
        Path runFile = dir.resolve(RUN_FILE), examplesFile = dir.resolve(EXAMPLES_FILE);
        ObjectNode run = checkOrWriteRunFile(dir, runFile, examplesFile, hashes, selection);

        log.printf("model      %s%nhead       %s (%d classes %s, %s pooling)%n", model.id(), headFile, head.numClasses(), head.labelNames(),
                head.pooling());
        log.printf("data       %s: %d of %d examples (%s)%n", eval.name(), n, eval.size(),
                n < eval.size() ? "the first of a seeded class-stratified order" : "all");
        log.printf("method     %s%ntarget     %s%n", config.describeMethod(), TARGET);

        // The examples.
        int linesWritten = 0;
        long dropped;
        Map<String, DriftRecord> records;
        Map<String, Set<String>> fp32Sites = new LinkedHashMap<>();
        try (DriftLog out = DriftLog.open(examplesFile)) {
            DriftLog.Contents c = out.contents();
            dropped = c.droppedBytes();
            records = new LinkedHashMap<>(c.records());
            for (DriftRecord r : records.values())
                if (!names.contains(r.scheme()))
                    throw new QdriftException(examplesFile + ": has lines of scheme '" + r.scheme() + "', which is not in --schemes; the file is not this run's");
            if (!records.isEmpty() || dropped > 0)
                log.printf("resuming   %d lines already in %s%s%s%n", records.size(), examplesFile,
                        dropped > 0 ? "; cut off a partial last line (" + dropped + " bytes), to be redone" : "",
                        c.duplicates() > 0 ? "; " + c.duplicates() + " duplicate lines ignored" : "");
            int todo = 0;
            for (int rank = 0; rank < n; rank++) if (!complete(records, order[rank], names)) todo++;
            Map<String, AttributionModel> models = todo == 0 ? Map.of() : models(schemes, head, given, runFile, run, fp32Sites);
            Progress progress = new Progress("drift", todo);
            Tokenizer tokenizer = model.tokenizer();
            for (int rank = 0; rank < n; rank++) {
                int row = order[rank];
                if (complete(records, row, names)) continue;
                Example ex = eval.examples().get(row);
                Tokenizer.Encoded enc = tokenizer.encode(ex.text(), ex.textPair());
                Sequence seq = Sequence.of(enc);
                List<String> wordTexts = new TokenScores(seq, new double[seq.length()]).wordTexts(false);
                DriftRecord ref = records.get(DriftLog.key(row, REFERENCE));
                Attribution fp32;
                int target;
                if (ref == null) {
                    AttributionModel g = models.get(REFERENCE);
                    target = Target.predictedLogit().resolve(g.forward(seq).logits()).classIndex();
                    fp32 = attribute(g, seq, Target.logit(target), method);
                } else {   // read back: the FP32 line of an example whose other lines a kill cut short
                    target = ref.targetClass();
                    fp32 = new Attribution(ref.logits(), ref.scores(), ref.targetAtInput(), ref.targetAtBaseline(), ref.delta(), ref.logitShift(),
                            ref.igSteps(), ref.converged(), ref.seconds());
                }
                for (Scheme s : schemes) {
                    String key = DriftLog.key(row, s.name());
                    if (records.containsKey(key)) continue;
                    Attribution a = s.name().equals(REFERENCE) ? fp32 : attribute(models.get(s.name()), seq, Target.logit(target), method);
                    DriftRecord r = record(row, rank, s.name(), ex, eval, enc, wordTexts, target, fp32, a);
                    out.append(r);
                    records.put(key, r);
                    linesWritten++;
                }
                progress.advance(1);
            }
        }
        if (fp32Sites.isEmpty()) fp32Sites = recordedFp32Sites(run);

        // The aggregate, over this run's selection.
        Set<Integer> selected = new HashSet<>();
        for (int rank = 0; rank < n; rank++) selected.add(order[rank]);
        List<DriftRecord> mine = records.values().stream().filter(r -> selected.contains(r.example())).toList();
        Map<String, List<String>> sites = new LinkedHashMap<>();
        fp32Sites.forEach((k, v) -> sites.put(k, List.copyOf(v)));
        Map<String, String> descriptions = new LinkedHashMap<>();
        for (Scheme s : schemes) descriptions.put(s.name(), s.describe());
        String device = backend != null ? backend.name()
                : "cpu (" + Runtime.getRuntime().availableProcessors() + " cores, " + System.getProperty("os.arch") + ")";
        DriftAggregate.Header header = new DriftAggregate.Header(model.id(), config.head(), eval.source(), config.describeMethod(), TARGET,
                device, selection.describe(), descriptions, sites);
        DriftAggregate.Result agg = DriftAggregate.aggregate(mine, schemeNames(schemes), eval.labelNames(), header);
        writeJson(dir.resolve(AGGREGATE_FILE), agg);
        log.println();
        DriftAggregate.print(agg, log);
        log.printf("%nwrote      %d lines to %s (%d of this selection were there) and %s%n", linesWritten, examplesFile,
                mine.size() - linesWritten, dir.resolve(AGGREGATE_FILE));
        return new Outcome(agg, n, linesWritten, mine.size() - linesWritten, dropped, fp32Sites);
    }

    /** Calibrates (or loads the statistics), searches mixed precision's FP32 sites, and builds each scheme's model for attribution. */
    private Map<String, AttributionModel> models(List<Scheme> schemes, LinearHead head, DataSelection given, Path runFile, ObjectNode run,
                                          Map<String, Set<String>> fp32Sites) {
        Pooling pooling = Pooling.parse(head.pooling());
        StraightThrough mode = straightThrough(config.straightThrough());
        CalibrationStats stats = null;
        if (schemes.stream().anyMatch(s -> !s.isFp32())) {
            // Calibration and the mixed-precision search run where the gradients do (the GPU, or the CPU backend under --float32); both in
            // true FP32 also under --tf32 (Backend.inFp32).
            Backend calibrating = backend != null ? backend : new CpuBackend();
            try {
                Dataset calib = RunInputs.calibrationSample(head, given, config.calibSize());
                Path file = config.calibration() == null ? null : Path.of(config.calibration());
                if (file == null || !Files.exists(file)) log.printf("calibrating on %d examples of %s%n", calib.size(), calib.name());
                stats = RunInputs.loadOrCalibrate(model, calibrating, calib, config.batchSize(), file, log);
                checkCalibration(runFile, run, RunInputs.hash(stats));
                for (Scheme s : schemes) {
                    Set<String> sites = s.fp32Sites();
                    if (s.searchMixed()) {
                        MixedPrecision.Result mixed = MixedPrecision.search(model, calibrating, s, stats, head, calib, config.batchSize(),
                                config.mixedBudget());
                        sites = mixed.fp32Sites();
                        log.printf("mixed      kept %d activation sites in FP32: %s (calibration acc FP32 %.4f, all quantized %.4f, mixed %.4f)%n",
                                sites.size(), sites, mixed.fp32Accuracy(), mixed.quantizedAccuracy(), mixed.mixedAccuracy());
                    }
                    fp32Sites.put(s.name(), new TreeSet<>(sites));
                }
            } finally {
                if (backend == null) calibrating.close();
            }
            run.set("fp32_sites", DriftLog.MAPPER.valueToTree(fp32Sites));
            writeJson(runFile, run);
        }
        Map<String, AttributionModel> models = new LinkedHashMap<>();
        // Occlusion differentiates nothing: its forward passes are the encoder's own (float32, the deletions of an
        // example batched), on the GPU or on a CPU backend, instead of the float64 gradient path's.
        boolean occlusion = Method.parse(config.method()) == Method.OCCLUSION;
        Backend forwards = backend != null ? backend : occlusion ? new CpuBackend() : null;
        for (Scheme s : schemes) {
            Set<String> sites = fp32Sites.getOrDefault(s.name(), Set.of());
            if (forwards == null) {
                models.put(s.name(), QuantizedGradients.build(model.weights(), head, pooling, s, stats, sites, mode));
                continue;
            }
            String why = config.int8() && !s.isFp32() ? QuantizedEncoders.integerIneligibility(s) : null;
            if (why != null) log.printf("int8       %s stays simulated (fake-quant) on the GPU: %s%n", s.name(), why);
            models.put(s.name(), QuantizedGradients.onBackend(model.weights(), head, pooling, s, stats, sites,
                    occlusion ? StraightThrough.STE : mode, forwards, config.int8()));
        }
        return models;
    }

    private static Map<String, Set<String>> recordedFp32Sites(JsonNode run) {
        Map<String, Set<String>> out = new LinkedHashMap<>();
        run.path("fp32_sites").fields().forEachRemaining(e -> {
            Set<String> sites = new TreeSet<>();
            e.getValue().forEach(v -> sites.add(v.asText()));
            out.put(e.getKey(), sites);
        });
        return out;
    }

    private static List<String> schemeNames(List<Scheme> schemes) {
        return schemes.stream().map(Scheme::name).toList();
    }

    private static boolean complete(Map<String, DriftRecord> records, int row, Set<String> names) {
        for (String s : names) if (!records.containsKey(DriftLog.key(row, s))) return false;
        return true;
    }

    private Attribution attribute(AttributionModel g, Sequence s, Target t, Method method) {
        long t0 = System.nanoTime();
        Attributions a = new Attributions(g);
        double[] logits = g.forward(s).logits();
        Attribution r = switch (method) {
            case IG -> {
                Baseline b = switch (config.baseline()) {
                    case "zero" -> Baseline.zero();
                    case "mask" -> Baseline.mask(model.tokenizer());
                    default -> Baseline.pad(model.tokenizer());
                };
                Attributions.IgResult ig = config.igTolerance() == null ? a.integratedGradients(s, t, b, rule(config.rule()), config.steps())
                        : a.integratedGradientsAdaptive(s, t, b, rule(config.rule()), config.steps(), config.igTolerance(), config.maxSteps());
                yield new Attribution(logits, ig.scores().words(), ig.targetAtInput(), ig.targetAtBaseline(), ig.delta(), null, ig.steps(),
                        config.igTolerance() == null ? null : ig.converged(), 0);
            }
            case SALIENCY -> new Attribution(logits, a.saliency(s, t).l2().words(), null, null, null, null, null, null, 0);
            case GXI -> new Attribution(logits, a.gradientTimesInput(s, t).scores().words(), null, null, null, null, null, null, 0);
            case OCCLUSION -> {
                Attributions.Occlusion o = a.occlusion(s, t, false);
                yield new Attribution(logits, o.drop().words(), null, null, null, o.logitShift().words(), null, null, 0);
            }
        };
        return new Attribution(r.logits(), r.words(), r.targetAtInput(), r.targetAtBaseline(), r.delta(), r.logitShift(), r.igSteps(),
                r.converged(), (System.nanoTime() - t0) / 1e9);
    }

    private static DriftRecord record(int row, int rank, String scheme, Example ex, Dataset eval, Tokenizer.Encoded enc, List<String> wordTexts,
                                      int target, Attribution fp32, Attribution a) {
        AttributionDrift.Metrics m = AttributionDrift.compare(fp32.words(), a.words());
        int fp32Pred = argmax(fp32.logits()), pred = argmax(a.logits());
        Double shiftR = null;
        if (a.logitShift() != null) shiftR = DriftRecord.orNull(pearson(fp32.logitShift(), a.logitShift()));
        return new DriftRecord(row, rank, scheme, ex.text(), ex.textPair(), ex.label(), eval.labelNames().get(ex.label()), enc.length(),
                a.words().length, enc.truncated(), "logit", target, eval.labelNames().get(target), fp32Pred, pred, fp32Pred == pred, a.logits(),
                a.logits()[target], fp32.logits()[target], wordTexts, a.words(), DriftRecord.orNull(m.spearman()),
                DriftRecord.orNull(m.kendallTauB()), DriftRecord.orNull(m.top1()), DriftRecord.orNull(m.top3()), DriftRecord.orNull(m.top5()),
                DriftRecord.orNull(m.signAgreement()), DriftRecord.orNull(m.cosine()), a.targetAtInput(), a.targetAtBaseline(), a.delta(),
                fp32.delta(), a.logitShift(), shiftR, a.igSteps(), a.converged(), a.seconds());
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /** Pearson correlation; NaN with fewer than 2 values or a constant vector. */
    static double pearson(double[] a, double[] b) {
        if (a.length < 2) return Double.NaN;
        return new PearsonsCorrelation().correlation(a, b);
    }

    /**
     * A seeded, class-stratified order of the examples: each class's members shuffled, then the classes
     * interleaved by the fraction of their class already taken ((j + 1/2) / class size for the j-th), so
     * every prefix holds each class in about its share and a longer prefix extends a shorter one.
     */
    public static int[] order(Dataset d, long seed) {
        List<List<Integer>> byClass = new ArrayList<>();
        for (int c = 0; c < d.numClasses(); c++) byClass.add(new ArrayList<>());
        for (int i = 0; i < d.size(); i++) byClass.get(d.examples().get(i).label()).add(i);
        Random random = new Random(seed);
        double[] key = new double[d.size()];
        int[] cls = new int[d.size()];
        for (int c = 0; c < byClass.size(); c++) {
            List<Integer> members = byClass.get(c);
            Collections.shuffle(members, random);
            for (int j = 0; j < members.size(); j++) {
                key[members.get(j)] = (j + 0.5) / members.size();
                cls[members.get(j)] = c;
            }
        }
        return IntStream.range(0, d.size()).boxed().sorted(Comparator.<Integer>comparingDouble(i -> key[i]).thenComparingInt(i -> cls[i]))
                .mapToInt(Integer::intValue).toArray();
    }

    // ---- run.json ---------------------------------------------------------------------------------

    private ObjectNode checkOrWriteRunFile(Path dir, Path runFile, Path examplesFile, Map<String, String> hashes, DataSelection selection) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new QdriftException(dir + ": cannot create: " + e.getMessage(), e);
        }
        ObjectNode args = DriftLog.MAPPER.valueToTree(config);
        ObjectNode hashNode = DriftLog.MAPPER.valueToTree(hashes);
        if (Files.exists(runFile)) {
            JsonNode old;
            try {
                old = DriftLog.MAPPER.readTree(runFile.toFile());
            } catch (IOException e) {
                throw new QdriftException(runFile + ": cannot read (" + e.getMessage() + "): move it away, or use another --out", e);
            }
            List<String> diffs = new ArrayList<>();
            diff("", old.path("arguments"), args, diffs);
            diff("hash of ", old.path("hashes"), hashNode, diffs);
            if (!diffs.isEmpty())
                throw new QdriftException(dir + " holds a drift run with other arguments or inputs, which this run cannot resume: "
                        + String.join("; ", diffs) + ". Use another --out, or the same arguments as " + runFile);
            return (ObjectNode) old;
        }
        if (Files.exists(examplesFile))
            throw new QdriftException(examplesFile + " exists but " + runFile + " does not: cannot tell which run wrote it; use another --out");
        ObjectNode run = DriftLog.MAPPER.createObjectNode();
        run.put("kind", "qdrift-drift-run");
        run.set("arguments", args);
        run.set("hashes", hashNode);
        run.set("selection", DriftLog.MAPPER.valueToTree(selection.describe()));
        run.put("target", TARGET);
        writeJson(runFile, run);
        return run;
    }

    /** Field-by-field, as JSON text (13 read back from a file is an int, written from a long it was a long). */
    private static void diff(String prefix, JsonNode old, JsonNode now, List<String> diffs) {
        Set<String> fields = new LinkedHashSet<>();
        now.fieldNames().forEachRemaining(fields::add);
        old.fieldNames().forEachRemaining(fields::add);
        for (String f : fields) {
            String a = old.has(f) ? old.get(f).toString() : ADDED_LATER.getOrDefault(f, "(absent)"),
                    b = now.has(f) ? now.get(f).toString() : "(absent)";
            if (!a.equals(b)) diffs.add(prefix + f + " was " + a + ", now " + b);
        }
    }

    /** Arguments added after runs were written: a run.json without them ran with these values (JSON text). */
    private static final Map<String, String> ADDED_LATER = Map.of("device", "\"cpu\"", "int8", "false", "tf32", "false", "fp16Backward",
            "false", "int8Gemm", "\"ours\"", "igTolerance", "null", "maxSteps", "null", "float32", "false");

    private static void checkCalibration(Path runFile, ObjectNode run, String hash) {
        JsonNode old = run.get("calibration");
        if (old != null && !old.asText().equals(hash))
            throw new QdriftException(runFile + ": the calibration statistics differ from those the run started with (hash " + old.asText()
                    + ", now " + hash + "): was the --calibration file replaced? Use another --out");
        if (old == null) {
            run.put("calibration", hash);
            writeJson(runFile, run);
        }
    }

    static void writeJson(Path file, Object value) {
        try {
            Path abs = file.toAbsolutePath();
            Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
            DriftLog.MAPPER.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), value);
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot write: " + e.getMessage(), e);
        }
    }
}
