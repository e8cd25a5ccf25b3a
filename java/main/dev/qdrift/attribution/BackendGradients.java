package dev.qdrift.attribution;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.Epilogue;
import dev.qdrift.backend.Backend.FloatBuf;
import dev.qdrift.backend.Backend.IntBuf;
import dev.qdrift.backend.Backend.LinearWeights;
import dev.qdrift.backend.GradientOps;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.Site;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.Scheme;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The gradients of {@link Gradients}, computed in float32 on a {@link Backend}'s buffers (the GPU):
 * the forward keeps a tape (each layer's packed q | k | v, both pre-norm residual sums and the pre-GELU
 * activation, and for the clipping-aware STE each quantized site's in-range mask), the backward runs
 * {@link GradientOps} layer by layer in reverse, exactly as {@link LayerPass#backward} does in float64. Several word-vector matrices of one sequence (IG's steps)
 * go through as one batch, and {@link #pathIntegral} interpolates and sums the steps on the device, so
 * one IG costs two host transfers of [seq, hidden].
 *
 * <p>A quantized model: weights fake-quantized (the backward uses them, i.e. the dequantized weights),
 * activations fake-quantized by the transform at the scheme's sites with the straight-through estimator
 * (identity backward), or the clipping-aware estimator (the forward keeps each quantized site's in-range
 * mask, 0 where the clamp acted, and the backward multiplies the site's gradient by it — {@link LayerPass}'s
 * rule, with {@link QuantSites#halfSteps}'s grid probe); optionally the linear layers of the forward run as s8
 * GEMMs on the backend's integer kernels (the real integer forward) while the backward uses the same weights
 * in FP32.
 *
 * <p>Not thread-safe (a backend is used from one thread).
 */
public final class BackendGradients implements AttributionModel {
    /**
     * Rows (steps x tokens) per device batch: bounds the memory of a batch — the forward's tape, about 0.66 MB
     * per row for BERT-base, and one layer's backward at a time, about 0.1 MB per row more (8192 rows: ~6.3 GB);
     * the clipping-aware STE's masks (float32) add up to 0.33 MB per row when every site is quantized.
     */
    public static final int DEFAULT_MAX_ROWS = 8192;

    /** backward: prepareInputGrad's weights of queryKeyValue, attentionOut, intermediate and output. */
    private record Layer(LinearWeights queryKeyValue, LinearWeights attentionOut, LinearWeights intermediate, LinearWeights output,
                         LinearWeights[] backward,
                         FloatBuf attnGamma, FloatBuf attnBeta, FloatBuf outGamma, FloatBuf outBeta) {}

    private final BertConfig config;
    private final BertWeights weights;
    private final LinearHead head;
    private final Pooling pooling;
    private final Backend backend;
    private final GradientOps ops;
    private final ActivationTransform transform;
    private final StraightThrough mode;
    /**
     * Clipping-aware STE: half a grid step (with slack) per column of every quantized site that can clip, by site key;
     * else empty. Sites whose grid never clips (dynamic per-token ranges) have none: no mask to keep.
     */
    private final Map<String, FloatBuf> halfSteps = new HashMap<>();
    private final FloatBuf position, type, embGamma, embBeta;
    private final List<Layer> layers = new ArrayList<>();
    private final LinearWeights pooler, poolerBackward;
    private final int maxRows;
    private int integerLayers;
    /** FP16 products: each row's seed is scaled so that its largest value lies in [2^SEED_EXPONENT, 2^(SEED_EXPONENT+1)) ({@link Seed}). */
    public static final int SEED_EXPONENT = 4;
    private int seedExponent = SEED_EXPONENT, halfOverflows, stepBatchRuns, replayedBatches;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(BackendGradients.class);

    /**
     * @param weights the model's weights (fake-quantized for a quantized model), uploaded here
     * @param transform the activation quantizer on this backend ({@link ActivationTransform#NONE} for FP32)
     * @param grid the transform's activation grid (bits, symmetric): needed for {@link StraightThrough#CLIP_AWARE}
     * @param integer which forward linear layers run as s8 GEMMs (null: none)
     * @param maxRows rows (steps x tokens) per device batch
     */
    public BackendGradients(BertWeights weights, LinearHead head, Pooling pooling, Backend backend, ActivationTransform transform,
                            QuantGrid grid, StraightThrough mode, Encoder.IntegerLinears integer, int maxRows) {
        this.config = weights.config();
        if (head.dim() != config.hidden())
            throw new QdriftException("head expects " + head.dim() + "-dim embeddings, the encoder gives " + config.hidden());
        if (pooling == Pooling.POOLER && weights.pooler() == null)
            throw new QdriftException("pooling 'pooler' needs pooler weights, which this model does not have; use cls or mean");
        if (maxRows < 1) throw new IllegalArgumentException("maxRows must be positive");
        this.weights = weights;
        this.head = head;
        this.pooling = pooling;
        this.backend = backend;
        this.ops = backend.gradientOps();
        this.transform = transform;
        this.mode = mode;
        this.maxRows = maxRows;
        position = backend.upload(weights.positionEmbeddings());
        type = backend.upload(weights.typeEmbeddings());
        embGamma = backend.upload(weights.embeddingNorm().gamma());
        embBeta = backend.upload(weights.embeddingNorm().beta());
        for (int l = 0; l < weights.layers().size(); l++) {
            BertWeights.Layer w = weights.layers().get(l);
            // Query, key and value as one product (the packed q | k | v attention reads), then the other three.
            List<BertWeights.Linear> linears = List.of(w.queryKeyValue(), w.attentionOutput(), w.intermediate(), w.output());
            LinearWeights[] backward = new LinearWeights[4], forward = new LinearWeights[4];
            for (int j = 0; j < 4; j++) {
                BertWeights.Linear linear = linears.get(j);
                Float scale = integer == null ? null : j == 0 ? integer.queryKeyValueScale(l) : integer.inputScale(l, j + 2);
                forward[j] = scale == null ? backend.prepareLinear(linear) : backend.prepareInt8Linear(linear, scale);
                if (scale != null) integerLayers += j == 0 ? 3 : 1;
                if (forward[j] == null) throw new QdriftException(backend.name() + " has no integer kernels: run integer execution with --device cuda");
                backward[j] = ops.prepareInputGrad(linear, scale == null ? forward[j] : null);
            }
            layers.add(new Layer(forward[0], forward[1], forward[2], forward[3], backward,
                    backend.upload(w.attentionNorm().gamma()), backend.upload(w.attentionNorm().beta()),
                    backend.upload(w.outputNorm().gamma()), backend.upload(w.outputNorm().beta())));
        }
        pooler = weights.pooler() == null ? null : backend.prepareLinear(weights.pooler());
        poolerBackward = weights.pooler() == null ? null : ops.prepareInputGrad(weights.pooler(), pooler);
        if (mode == StraightThrough.CLIP_AWARE) {
            // Probed once, here: outside any scope, so the steps live as long as the weights.
            for (int l = -1; l < config.layers(); l++)
                for (Site site : Scheme.ACTIVATION_SITES) {
                    if ((site == Site.EMBEDDINGS) != (l < 0) || !transform.at(l, site)) continue;
                    int cols = site == Site.INTERMEDIATE ? config.intermediate() : config.hidden();
                    double[] half = QuantSites.halfSteps(transform, backend, grid, l, site, cols);
                    // A per-token grid's probe lands at ±1e30: nothing clips there, no mask to keep.
                    if (!Arrays.stream(half).allMatch(x -> x > 1e20)) halfSteps.put(site.key(l), backend.upload(toFloat(half)));
                }
        }
    }

    @Override
    public BertConfig config() {
        return config;
    }

    @Override
    public LinearHead head() {
        return head;
    }

    public Backend backend() {
        return backend;
    }

    @Override
    public double[] wordVector(int id) {
        checkId(id);
        int h = config.hidden();
        double[] v = new double[h];
        for (int d = 0; d < h; d++) v[d] = weights.wordEmbeddings()[id * h + d];
        return v;
    }

    // ---- the public passes ----------------------------------------------------------------------------

    @Override
    public Output forward(Sequence s, double[] words) {
        checkWords(s, words);
        try (Backend.Scope scope = backend.openScope()) {
            Tape tape = forward(s, backend.upload(toFloat(words)), 1, false, true);
            float[] last = new float[s.length() * config.hidden()];
            backend.download(tape.last, last);
            return new Output(tape.logits[0], toDouble(tape.pooled, 0, config.hidden()), toDouble(last, 0, last.length));
        }
    }

    /** Sequences of one length go through together (occlusion's deletions all do), up to the batch's row budget. */
    @Override
    public List<Output> forwards(List<Sequence> seqs) {
        Output[] out = new Output[seqs.size()];
        Map<Integer, List<Integer>> byLength = new TreeMap<>();
        for (int i = 0; i < seqs.size(); i++) byLength.computeIfAbsent(seqs.get(i).length(), k -> new ArrayList<>()).add(i);
        int h = config.hidden();
        float[] table = weights.wordEmbeddings();
        for (List<Integer> group : byLength.values()) {
            int len = seqs.get(group.get(0)).length(), per = Math.max(1, maxRows / len), n = len * h;
            for (int g0 = 0; g0 < group.size(); g0 += per) {
                List<Sequence> chunk = new ArrayList<>();
                for (int i : group.subList(g0, Math.min(group.size(), g0 + per))) chunk.add(seqs.get(i));
                float[] words = new float[chunk.size() * n];
                for (int b = 0; b < chunk.size(); b++) {
                    Sequence s = chunk.get(b);
                    checkSequence(s);
                    for (int t = 0; t < len; t++) System.arraycopy(table, s.ids()[t] * h, words, b * n + t * h, h);
                }
                try (Backend.Scope scope = backend.openScope()) {
                    Tape tape = forward(chunk, backend.upload(words), false, true);
                    float[] last = new float[chunk.size() * n];
                    backend.download(tape.last, last);
                    for (int b = 0; b < chunk.size(); b++)
                        out[group.get(g0 + b)] = new Output(tape.logits[b], toDouble(tape.pooled, b * h, h), toDouble(last, b * n, n));
                }
            }
        }
        return List.of(out);
    }

    @Override
    public Result gradient(Sequence s, double[] words, Target target) {
        checkWords(s, words);
        return overflowChecked(() -> {
            try (Backend.Scope scope = backend.openScope()) {
                Tape tape = forward(s, backend.upload(toFloat(words)), 1, true, true);
                Target t = target.resolve(tape.logits[0]);
                float[] g = new float[words.length];
                Seed seed = seed(t, 1, tape.logits, tape.pooled);
                backend.download(backward(tape, backend.upload(seed.values)), g);
                return new Result(t, t.value(tape.logits[0]), tape.logits[0], unscaled(g, 0, g.length, seed.scales[0]));
            }
        }, r -> allFinite(r.gradient()));
    }

    @Override
    public List<Result> gradients(Sequence s, List<double[]> words, Target target) {
        requireResolved(target);
        int n = s.length() * config.hidden(), per = stepsPerBatch(s);
        List<Result> out = new ArrayList<>();
        for (int k0 = 0; k0 < words.size(); k0 += per) {
            int batch = Math.min(per, words.size() - k0);
            float[] all = new float[batch * n];
            for (int b = 0; b < batch; b++) {
                checkWords(s, words.get(k0 + b));
                for (int i = 0; i < n; i++) all[b * n + i] = (float) words.get(k0 + b)[i];
            }
            out.addAll(overflowChecked(() -> {
                try (Backend.Scope scope = backend.openScope()) {
                    Tape tape = forward(s, backend.upload(all), batch, true, true);
                    float[] g = new float[batch * n];
                    Seed seed = seed(target, batch, tape.logits, tape.pooled);
                    backend.download(backward(tape, backend.upload(seed.values)), g);
                    List<Result> results = new ArrayList<>();
                    for (int b = 0; b < batch; b++)
                        results.add(new Result(target, target.value(tape.logits[b]), tape.logits[b], unscaled(g, b * n, n, seed.scales[b])));
                    return results;
                }
            }, rs -> rs.stream().allMatch(r -> allFinite(r.gradient()))));
        }
        return out;
    }

    /**
     * The steps are interpolated, differentiated and summed on the backend, a batch of steps at a time; under FP16
     * products each step's quadrature weight carries the division by its seed's scale. For a logit target (without the
     * pooler) the seed is known up front ({@link #constantSeed}) and a batch's work is queued without a wait; when all
     * steps then fit one batch, that batch is a {@link StepBatch}, recorded and replayed.
     */
    @Override
    public double[] pathIntegral(Sequence s, double[] from, double[] diff, double[] alphas, double[] weights, Target target) {
        requireResolved(target);
        checkWords(s, from);
        checkWords(s, diff);
        int n = from.length, per = stepsPerBatch(s);
        return overflowChecked(() -> {
            Seed whole = alphas.length <= per ? constantSeed(target, alphas.length) : null;
            if (whole != null) return stepBatch(s, alphas.length).run(s, from, diff, toFloat(alphas), divided(weights, 0, whole.scales), whole);
            try (Backend.Scope scope = backend.openScope()) {
                FloatBuf x0Buf = backend.allocate(n), dxBuf = backend.allocate(n), integral = backend.allocate(n);
                backend.write(x0Buf, from);
                backend.write(dxBuf, diff);
                // One upload of the tokens for a full batch; a shorter last batch reads their first rows.
                Tokens tokens = tokens(java.util.Collections.nCopies(Math.min(per, alphas.length), s));
                for (int k0 = 0; k0 < alphas.length; k0 += per) {
                    int batch = Math.min(per, alphas.length - k0), first = k0;
                    try (Backend.Scope step = backend.openScope()) {
                        Seed constant = constantSeed(target, batch);
                        queueSteps(s.length(), batch, tokens, x0Buf, dxBuf,
                                backend.upload(toFloat(alphas, k0, batch)), integral, k0 > 0, constant == null,
                                tape -> uploaded(constant != null ? constant : seed(target, batch, tape.logits, tape.pooled), weights, first));
                    }
                }
                double[] result = new double[n];
                backend.download(integral, result);
                return result;
            }
        }, BackendGradients::allFinite);
    }

    /** A step batch's seed and quadrature weights (each divided by its step's seed scale) on the backend. */
    private record StepSeed(FloatBuf seed, FloatBuf weights) {}

    private StepSeed uploaded(Seed seed, double[] weights, int from) {
        return new StepSeed(backend.upload(seed.values), backend.upload(divided(weights, from, seed.scales)));
    }

    /**
     * Queues one batch of IG steps: words_k = x0 + alphas_k dx, each step's gradient, integral (+)= sum_k w_k gradient_k.
     * stepSeed gives the seed and weights once the forward is queued; with logits the forward downloads them first (a
     * wait), for a seed that needs them.
     */
    private void queueSteps(int seq, int batch, Tokens tokens, FloatBuf x0, FloatBuf dx, FloatBuf alphas, FloatBuf integral,
                            boolean accumulate, boolean logits, java.util.function.Function<Tape, StepSeed> stepSeed) {
        int n = seq * config.hidden();
        FloatBuf words = backend.allocate(batch * n);
        ops.interpolate(x0, dx, alphas, n, words);
        Tape tape = forward(batch, seq, tokens, words, true, logits);
        StepSeed seed = stepSeed.apply(tape);
        ops.weightedRowSum(backward(tape, seed.seed), seed.weights, n, integral, accumulate);
    }

    /** Step batches by shape and the backend's mode, the most recently used kept ({@link #STEP_BATCHES} at most). */
    private final Map<String, StepBatch> stepBatches = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, StepBatch> eldest) {
            if (size() <= STEP_BATCHES) return false;
            eldest.getValue().close();
            return true;
        }
    };
    /** Each holds its shape's kept buffers (1.4 MB for BERT-base, 128 tokens, 50 steps) and recording: a data set's sentence lengths. */
    private static final int STEP_BATCHES = 64;

    private StepBatch stepBatch(Sequence s, int batch) {
        // The backend's name carries its mode (TF32, FP16 products): a recording replays only in the mode it was made in.
        return stepBatches.computeIfAbsent(s.length() + " x " + batch + " on " + backend.name(), k -> new StepBatch(s.length(), batch));
    }

    /**
     * All steps of an IG as one batch of fixed shape, on kept buffers (written before each run, the integral read after):
     * run unrecorded the first time (which lets the libraries make their choices for the shape), then recorded
     * ({@link Backend#record}: on the GPU one graph launch instead of ~230 kernel launches, and no host work between
     * them) and replayed. A backend that does not record runs it unrecorded each time; a recording that fails is logged
     * and the batch runs unrecorded from then on.
     */
    private final class StepBatch implements AutoCloseable {
        private final int seq, batch;
        private final FloatBuf x0, dx, alphas, weights, seed, integral;
        private final IntBuf ids, types, mask;
        /** What the kept buffers hold, to skip rewriting what did not change (the same target, steps, segments). */
        private float[] alphasNow, weightsNow, seedNow;
        /** The sequence's segment ids the kept `types` hold, batch copies of them. */
        private int[] typesNow;
        private Backend.Replay replay;
        private boolean warmed, unrecordable;

        StepBatch(int seq, int batch) {
            this.seq = seq;
            this.batch = batch;
            int n = seq * config.hidden(), rows = batch * seq;
            x0 = backend.allocateKept(n);
            dx = backend.allocateKept(n);
            integral = backend.allocateKept(n);
            alphas = backend.allocateKept(batch);
            weights = backend.allocateKept(batch);
            seed = backend.allocateKept(batch * config.hidden());
            ids = backend.allocateKeptInts(rows);
            types = backend.allocateKeptInts(rows);
            mask = backend.allocateKeptInts(rows);
            backend.write(ids, rowIndices(rows));
            backend.write(mask, ones(rows));
        }

        /** The integral of this shape's steps for sequence s: from x0 along dx at alphas, weighted (already divided by the seed's scales). */
        double[] run(Sequence s, double[] x0Now, double[] dxNow, float[] alphasIn, float[] weightsIn, Seed seedIn) {
            backend.write(x0, x0Now);
            backend.write(dx, dxNow);
            alphasNow = keep(alphas, alphasNow, alphasIn);
            weightsNow = keep(weights, weightsNow, weightsIn);
            seedNow = keep(seed, seedNow, seedIn.values);
            if (!Arrays.equals(typesNow, s.typeIds())) {
                backend.write(types, segments(java.util.Collections.nCopies(batch, s)));
                typesNow = s.typeIds().clone();
            }
            if (replay == null && warmed && !unrecordable) {
                try {
                    replay = backend.record(this::queue);
                    unrecordable = replay == null; // this backend does not record (the CPU): not asked again
                } catch (RuntimeException e) {
                    unrecordable = true;
                    LOG.warn("recording IG's steps ({} x {} tokens) failed; they run unrecorded: {}", batch, seq, e.getMessage());
                }
            }
            stepBatchRuns++;
            if (replay != null) {
                replay.run();
                replayedBatches++;
            } else {
                queue();
                warmed = true;
            }
            double[] result = new double[seq * config.hidden()];
            backend.download(integral, result);
            return result;
        }

        private float[] keep(FloatBuf buf, float[] now, float[] in) {
            if (Arrays.equals(now, in)) return now;
            backend.write(buf, in);
            return in;
        }

        private void queue() {
            try (Backend.Scope scope = backend.openScope()) {
                queueSteps(seq, batch, new Tokens(ids, types, mask), x0, dx, alphas, integral, false, false,
                        tape -> new StepSeed(seed, weights));
            }
        }

        @Override
        public void close() {
            if (replay != null) replay.close();
            for (FloatBuf b : List.of(x0, dx, alphas, weights, seed, integral)) backend.release(b);
            for (IntBuf b : List.of(ids, types, mask)) backend.release(b);
        }
    }

    /** How many IGs ran as one {@link StepBatch}, recorded or not (tests: that the path was taken). */
    public int stepBatchRuns() {
        return stepBatchRuns;
    }

    /** How many IG step batches ran as a replay of their recording ({@link StepBatch}; tests: that it was used). */
    public int replayedBatches() {
        return replayedBatches;
    }

    /** How many calls overflowed FP16 products and ran again in FP32 ({@link #overflowChecked}). */
    public int halfOverflows() {
        return halfOverflows;
    }

    /**
     * Under FP16 products each row's seed is scaled so that its largest value lies in [2^e, 2^(e+1)) (default
     * {@link #SEED_EXPONENT}): for tests that force an overflow.
     */
    public void seedExponent(int e) {
        seedExponent = e;
    }

    /**
     * Runs a pass; under FP16 products a result that is not all finite is taken for an overflow of FP16's range (a
     * gradient that reached 65520 after the seed's scaling), and the pass runs again with FP32 operands for the products
     * ({@link GradientOps#withoutHalfProducts}; everything else, TF32 included, as before). Without FP16 products, the
     * result as it is.
     */
    private <T> T overflowChecked(java.util.function.Supplier<T> pass, java.util.function.Predicate<T> finite) {
        if (!ops.halfProducts()) return pass.get();
        T result = pass.get();
        if (finite.test(result)) return result;
        halfOverflows++;
        if (halfOverflows == 1)
            LOG.warn("a gradient overflowed the FP16 backward products (FP16 ends at 65504; the seed is scaled to 2^{}); that pass ran "
                    + "again with FP32 operands, as will any other that overflows (counted: BackendGradients.halfOverflows)", seedExponent);
        return ops.withoutHalfProducts(pass);
    }

    private static boolean allFinite(double[] a) {
        for (double x : a) if (!Double.isFinite(x)) return false;
        return true;
    }

    /** IG steps per device batch for this sequence length. */
    public int stepsPerBatch(Sequence s) {
        return Math.max(1, maxRows / s.length());
    }

    // ---- forward with tape ----------------------------------------------------------------------------

    /**
     * What the backward of one layer reads; inRange: the clipping-aware STE's masks of its quantized sites (empty
     * for the plain STE).
     */
    private record LayerTape(FloatBuf qkv, FloatBuf sum1, FloatBuf u, FloatBuf sum2, Map<Site, FloatBuf> inRange) {}

    /** A batch's forward, kept for its backward; logits and the (post-pooler) pooled vectors on the host, or null where not asked for. */
    private record Tape(int batch, int seq, IntBuf mask, FloatBuf embeddings, FloatBuf embeddingsInRange, LayerTape[] layers, FloatBuf last,
                        float[] pooled, double[][] logits) {}

    /**
     * words [batch, seq, hidden] on the backend: batch word-vector matrices of sequence s; with logits, the pooled vectors
     * are downloaded (a wait for the forward) and the head applied on the host.
     */
    private Tape forward(Sequence s, FloatBuf words, int batch, boolean forBackward, boolean logits) {
        return forward(java.util.Collections.nCopies(batch, s), words, forBackward, logits);
    }

    /** words [batch, seq, hidden] on the backend: the word vectors of seqs (one length), with their segment ids. */
    private Tape forward(List<Sequence> seqs, FloatBuf words, boolean forBackward, boolean withLogits) {
        return forward(seqs.size(), seqs.get(0).length(), tokens(seqs), words, forBackward, withLogits);
    }

    /**
     * A batch's tokens on the backend: ids[r] = r (the words buffer is the batch's own word "table": row r is token r's
     * vector), segment ids, and the mask (all ones: every token is real).
     */
    private record Tokens(IntBuf ids, IntBuf types, IntBuf mask) {}

    private Tokens tokens(List<Sequence> seqs) {
        int rows = seqs.size() * seqs.get(0).length();
        return new Tokens(backend.uploadInts(rowIndices(rows)), backend.uploadInts(segments(seqs)), backend.uploadInts(ones(rows)));
    }

    private static int[] rowIndices(int rows) {
        int[] ids = new int[rows];
        for (int r = 0; r < rows; r++) ids[r] = r;
        return ids;
    }

    private static int[] ones(int rows) {
        int[] a = new int[rows];
        Arrays.fill(a, 1);
        return a;
    }

    /** The segment ids of sequences of one length, one after another. */
    private static int[] segments(List<Sequence> seqs) {
        int seq = seqs.get(0).length();
        int[] types = new int[seqs.size() * seq];
        for (int b = 0; b < seqs.size(); b++) System.arraycopy(seqs.get(b).typeIds(), 0, types, b * seq, seq);
        return types;
    }

    private Tape forward(int batch, int seq, Tokens tokens, FloatBuf words, boolean forBackward, boolean withLogits) {
        int h = config.hidden(), f = config.intermediate(), rows = batch * seq;
        float eps = config.layerNormEps();
        IntBuf mask = tokens.mask;
        FloatBuf e = backend.allocate(rows * h), x = backend.allocate(rows * h);
        backend.embed(tokens.ids, tokens.types, words, position, type, batch, seq, h, e);
        // The clipping-aware masks only when a backward follows (forward-only calls, occlusion's, skip them).
        boolean masks = forBackward && mode == StraightThrough.CLIP_AWARE;
        Map<Site, FloatBuf> embeddingMask = masks ? new EnumMap<>(Site.class) : null;
        Backend.ColumnGrid embeddings = fusedGrid(-1, Site.EMBEDDINGS, embeddingMask);
        // Each LayerNorm feeds a linear layer (the next layer's query-key-value, the intermediate): in one pass where the
        // backend fuses them (residualNorm's rule), else the layer runs here.
        FloatBuf qkv = layers.isEmpty() ? null : backend.allocate(rows * 3 * h);
        boolean qkvDone = (embeddings != null || !transform.at(-1, Site.EMBEDDINGS)) && qkv != null
                && backend.addLayerNormIntoLinear(e, null, null, embeddings, embGamma, embBeta, eps, rows, h, x, null,
                        layers.get(0).queryKeyValue, Epilogue.NONE, qkv);
        if (!qkvDone) {
            backend.addLayerNormQuantized(e, null, null, embeddings, embGamma, embBeta, eps, rows, h, x, null);
            if (embeddings == null) site(-1, Site.EMBEDDINGS, x, rows, h, embeddingMask);
        }
        LayerTape[] tape = new LayerTape[layers.size()];
        for (int l = 0; l < layers.size(); l++) {
            Layer L = layers.get(l);
            Map<Site, FloatBuf> inRange = masks ? new EnumMap<>(Site.class) : null;
            FloatBuf ctx = backend.allocate(rows * h), a = backend.allocate(rows * h), sum1 = backend.allocate(rows * h),
                    h1 = backend.allocate(rows * h), u = backend.allocate(rows * f), o = backend.allocate(rows * h),
                    sum2 = backend.allocate(rows * h), out = backend.allocate(rows * h);
            if (!qkvDone) backend.linear(x, rows, L.queryKeyValue, Epilogue.NONE, qkv);
            backend.attention(qkv, mask, batch, seq, config.heads(), config.headDim(), ctx);
            // The context's site, then the attention output layer: in one pass over ctx where the backend fuses them (the
            // s8 forward), which a site quantized on its own (a range taken at run time, a clipping-aware mask) rules out.
            Backend.ColumnGrid context = fusedGrid(l, Site.ATTENTION_CONTEXT, inRange);
            if (context == null && transform.at(l, Site.ATTENTION_CONTEXT)
                    || !backend.siteIntoLinear(ctx, rows, h, false, context, L.attentionOut, a)) {
                site(l, Site.ATTENTION_CONTEXT, ctx, rows, h, inRange);
                backend.linear(ctx, rows, L.attentionOut, Epilogue.NONE, a);
            }
            if (!residualNorm(l, Site.ATTENTION_RESIDUAL, Site.ATTENTION_NORM, a, x, L.attnGamma, L.attnBeta, sum1, h1, rows, inRange,
                    L.intermediate, u))
                backend.linear(h1, rows, L.intermediate, Epilogue.NONE, u);
            Backend.ColumnGrid intermediate = fusedGrid(l, Site.INTERMEDIATE, inRange);
            // g = GELU(u) at its site, then the output layer: likewise in one pass over u where the backend fuses them.
            if (intermediate == null && transform.at(l, Site.INTERMEDIATE)
                    || !backend.siteIntoLinear(u, rows, f, true, intermediate, L.output, o)) {
                // In this scope, not one of its own: a clipping-aware site allocates its mask (the tape's) after g.
                FloatBuf g = backend.allocate(rows * f);
                ops.gelu(u, g, rows, f, intermediate);
                if (intermediate == null) site(l, Site.INTERMEDIATE, g, rows, f, inRange);
                backend.linear(g, rows, L.output, Epilogue.NONE, o);
            }
            FloatBuf nextQkv = l + 1 < layers.size() ? backend.allocate(rows * 3 * h) : null;
            qkvDone = residualNorm(l, Site.OUTPUT_RESIDUAL, Site.OUTPUT_NORM, o, h1, L.outGamma, L.outBeta, sum2, out, rows, inRange,
                    nextQkv == null ? null : layers.get(l + 1).queryKeyValue, nextQkv);
            tape[l] = new LayerTape(qkv, sum1, u, sum2, inRange == null ? Map.of() : inRange);
            x = out;
            qkv = nextQkv;
        }
        float[] pooledHost = null;
        double[][] logits = null;
        if (withLogits) {
            FloatBuf pooled = Encoder.pool(backend, x, mask, batch, seq, h, pooling, pooler);
            pooledHost = new float[batch * h];
            backend.download(pooled, pooledHost);
            logits = new double[batch][];
            for (int b = 0; b < batch; b++) logits[b] = logits(pooledHost, b * h);
        }
        return new Tape(batch, seq, mask, e, masks ? embeddingMask.get(Site.EMBEDDINGS) : null, tape, x, pooledHost, logits);
    }

    /**
     * out = LayerNorm(branch + residual), the sum kept in sum (the tape), with its two sites: a quantized sum
     * (sumSite) is fake-quantized, then normalized; then the output's site (normSite). Sites whose quantization needs
     * no mask are quantized inside the LayerNorm's pass. Then, where the backend fuses it and the output's site is
     * quantized inside the pass (or not at all), nextOut = next(out) in the same pass: returns whether it did (next null:
     * never).
     */
    private boolean residualNorm(int l, Site sumSite, Site normSite, FloatBuf branch, FloatBuf residual, FloatBuf gamma, FloatBuf beta,
                                 FloatBuf sum, FloatBuf out, int rows, Map<Site, FloatBuf> inRange, LinearWeights next, FloatBuf nextOut) {
        int h = config.hidden();
        float eps = config.layerNormEps();
        Backend.ColumnGrid sumGrid = fusedGrid(l, sumSite, inRange), outGrid = fusedGrid(l, normSite, inRange);
        if (sumGrid == null && transform.at(l, sumSite)) {
            backend.addLayerNorm(branch, residual, gamma, beta, eps, rows, h, out, sum);
            site(l, sumSite, sum, rows, h, inRange);
            backend.addLayerNormQuantized(sum, null, null, outGrid, gamma, beta, eps, rows, h, out, null);
        } else if (next != null && (outGrid != null || !transform.at(l, normSite))
                && backend.addLayerNormIntoLinear(branch, residual, sumGrid, outGrid, gamma, beta, eps, rows, h, out, sum, next,
                        Epilogue.NONE, nextOut)) {
            return true;
        } else {
            backend.addLayerNormQuantized(branch, residual, sumGrid, outGrid, gamma, beta, eps, rows, h, out, sum);
        }
        if (outGrid == null) site(l, normSite, out, rows, h, inRange);
        return false;
    }

    /**
     * The site's grid when the kernel that produces the site can also fake-quantize it: a static grid, and no
     * clipping-aware mask to record (that needs the values before and after); else null.
     */
    private Backend.ColumnGrid fusedGrid(int layer, Site s, Map<Site, FloatBuf> inRange) {
        if (inRange != null && halfSteps.containsKey(s.key(layer))) return null;
        return transform.columnGrid(layer, s);
    }

    /**
     * Fake-quantizes a site in place (if the model quantizes it); with inRange (clipping-aware STE, a backward to
     * follow) and a grid that can clip, records the site's in-range mask there.
     */
    private void site(int layer, Site s, FloatBuf v, int rows, int cols, Map<Site, FloatBuf> inRange) {
        if (!transform.at(layer, s)) return;
        FloatBuf half = inRange == null ? null : halfSteps.get(s.key(layer));
        if (half == null) {  // no backward to follow, or a grid that never clips
            transform.apply(layer, s, v, rows, cols);
            return;
        }
        FloatBuf mask = backend.allocate(rows * cols); // the tape's; the copy of the site before quantizing is not
        try (Backend.Scope before = backend.openScope()) {
            FloatBuf pre = backend.allocate(rows * cols);
            ops.copy(v, pre);
            transform.apply(layer, s, v, rows, cols);
            ops.clipMask(pre, v, half, rows, cols, mask);
        }
        inRange.put(s, mask);
    }

    /** The backward of a fake-quant site, in place: identity (STE), or zero where the clamp acted (clipping-aware). */
    private FloatBuf through(FloatBuf grad, FloatBuf inRange, int n) {
        if (inRange != null) ops.multiply(grad, inRange, n);
        return grad;
    }

    /** The head on one pooled vector, in double, each logit rounded to float32 as the CPU path does. */
    private double[] logits(float[] pooled, int offset) {
        float[][] w = head.weight();
        double[] z = new double[w.length];
        for (int c = 0; c < w.length; c++) {
            double sum = head.bias()[c];
            for (int j = 0; j < config.hidden(); j++) sum += w[c][j] * (double) pooled[offset + j];
            z[c] = (float) sum;
        }
        return z;
    }

    // ---- backward -------------------------------------------------------------------------------------

    /**
     * The backward's seed on the host, d target / d pooled [batch, hidden], row b times scales[b]. Under FP16 products
     * a row's scale is the power of two that puts that row's largest value in [2^seedExponent, 2^(seedExponent+1)):
     * every gradient of the row's backward (rows do not mix: each is one sequence), which is linear in its seed, then
     * carries the same exact factor, which keeps FP16's range (full precision from 2^-14, inf from 65520) about the
     * gradients' values — headroom of about 2^(15 - seedExponent) for growth, 2^(seedExponent + 14) below the seed before
     * precision thins. Per row, because the rows' seeds can differ by orders of magnitude (a log-probability's along an
     * IG path). Else 1.
     */
    private record Seed(float[] values, double[] scales) {}

    /** The seed from each row's logits (and, for the pooler, its tanh output pooled): target.gradient through the head. */
    private Seed seed(Target target, int batch, double[][] logits, float[] pooled) {
        int h = config.hidden();
        float[][] w = head.weight();
        float[] dPooled = new float[batch * h];
        for (int b = 0; b < batch; b++) {
            double[] dLogits = target.gradient(logits[b]);
            for (int j = 0; j < h; j++) {
                double s = 0;
                for (int c = 0; c < w.length; c++) s += dLogits[c] * w[c][j];
                // pooled = tanh(pre) for the pooler: d pre = d pooled (1 - pooled^2).
                if (pooling == Pooling.POOLER) s *= 1 - (double) pooled[b * h + j] * pooled[b * h + j];
                dPooled[b * h + j] = (float) s;
            }
        }
        return scaledSeed(dPooled, batch);
    }

    /**
     * A logit's seed through CLS or mean pooling (no pooler tanh): the head's row of the class for every row — what
     * {@link #seed} computes from any logits, known before the forward, so that a batch's forward and backward are queued
     * on the device at once, the host never waiting for the logits in between. Else (a log-probability, the pooler) null.
     */
    private Seed constantSeed(Target target, int batch) {
        if (target.kind() != Target.Kind.LOGIT || pooling == Pooling.POOLER) return null;
        // A function of the target, the batch and the seed's scaling alone: made once for each.
        String key = target + " x " + batch + (ops.halfProducts() ? " scaled to 2^" + seedExponent : "");
        return constantSeeds.computeIfAbsent(key, k -> {
            double[][] anyLogits = new double[batch][head.weight().length]; // a logit's gradient e_c does not depend on them
            return seed(target, batch, anyLogits, null);
        });
    }

    private final Map<String, Seed> constantSeeds = new HashMap<>();

    private Seed scaledSeed(float[] dPooled, int batch) {
        int h = config.hidden();
        double[] scales = new double[batch];
        for (int b = 0; b < batch; b++) {
            scales[b] = ops.halfProducts() ? seedScale(dPooled, b * h, (b + 1) * h, seedExponent) : 1;
            if (scales[b] != 1) for (int j = b * h; j < (b + 1) * h; j++) dPooled[j] = (float) (dPooled[j] * scales[b]);
        }
        return new Seed(dPooled, scales);
    }

    /** d target / d words [batch, seq, hidden] on the backend, row b times the seed's scales[b]. */
    private FloatBuf backward(Tape tape, FloatBuf seed) {
        int h = config.hidden(), batch = tape.batch, rows = batch * tape.seq;
        FloatBuf dCls = seed;
        if (pooling == Pooling.POOLER) {
            FloatBuf d = backend.allocate(batch * h);
            ops.linearInputGrad(dCls, batch, poolerBackward, d, false);
            dCls = d;
        }
        FloatBuf dx = backend.allocate(rows * h);
        ops.poolGrad(dCls, tape.mask, batch, tape.seq, h, pooling == Pooling.MEAN ? Backend.Pooling.MEAN : Backend.Pooling.CLS, dx);
        for (int l = layers.size() - 1; l >= 0; l--) dx = layerBackward(layers.get(l), tape.layers[l], dx, tape);
        // Quantized embeddings: through their site; e = words + type + position, d e / d words = 1.
        through(dx, tape.embeddingsInRange, rows * h);
        FloatBuf dWords = backend.allocate(rows * h);
        ops.layerNormGrad(dx, tape.embeddings, embGamma, config.layerNormEps(), rows, h, dWords);
        return dWords;
    }

    /**
     * 2^(e - exponent of max |seed[from, to)|): the power of two that brings that row's largest value to [2^e, 2^(e+1)); 1
     * for a zero row. Kept within 2^±64, so that dividing float32 quadrature weights by it cannot underflow them.
     */
    static double seedScale(float[] seed, int from, int to, int e) {
        float max = 0;
        for (int i = from; i < to; i++) max = Math.max(max, Math.abs(seed[i]));
        return max == 0 || !Float.isFinite(max) ? 1 : Math.scalb(1.0, Math.clamp(e - Math.getExponent(max), -64, 64));
    }

    /** {@link LayerPass#backward} on the backend: dOut = d target / d (layer output); returns d target / d (layer input). */
    private FloatBuf layerBackward(Layer L, LayerTape t, FloatBuf dOut, Tape tape) {
        int h = config.hidden(), f = config.intermediate(), rows = tape.batch * tape.seq;
        LinearWeights[] w = L.backward;
        FloatBuf dx = backend.allocate(rows * h); // outlives this layer's scope: the next layer's dOut
        try (Backend.Scope layer = backend.openScope()) {
            FloatBuf dG = backend.allocate(rows * f), dH1 = backend.allocate(rows * h), dCtx = backend.allocate(rows * h),
                    dqkv = backend.allocate(rows * 3 * h);
            // Each quantized site's gradient goes through it (the clipping-aware mask; nothing for the STE), as in LayerPass.
            Map<Site, FloatBuf> in = t.inRange;
            // sum2 = output(g) + h1: dSum2 goes to both branches, so it is written straight into dH1 (the residual's share,
            // which the FFN's share is added to), and through the output layer into dG.
            normGradThenProduct(through(dOut, in.get(Site.OUTPUT_NORM), rows * h), t.sum2, L.outGamma, in.get(Site.OUTPUT_RESIDUAL), dH1,
                    w[3], dG, rows);
            ops.geluGradInputGrad(through(dG, in.get(Site.INTERMEDIATE), rows * f), t.u, rows, f, w[2], dH1, true);
            // sum1 = attentionOut(ctx) + x: likewise dSum1 into dx, and through the attention output layer into dCtx.
            normGradThenProduct(through(dH1, in.get(Site.ATTENTION_NORM), rows * h), t.sum1, L.attnGamma, in.get(Site.ATTENTION_RESIDUAL),
                    dx, w[1], dCtx, rows);
            through(dCtx, in.get(Site.ATTENTION_CONTEXT), rows * h);
            // x feeds query, key and value (one packed product) and the residual.
            ops.attentionGradInputGrad(dCtx, t.qkv, tape.mask, tape.batch, tape.seq, config.heads(), config.headDim(), dqkv, w[0], dx);
        }
        return dx;
    }

    /**
     * dSum = LayerNorm's backward of dy into dSum, through the residual sum's site (its clipping-aware mask, else nothing),
     * then product = dSum W: in one call where no mask sits between the two (the GPU's FP16 products then take their
     * operand from the LayerNorm's backward itself).
     */
    private void normGradThenProduct(FloatBuf dy, FloatBuf sum, FloatBuf gamma, FloatBuf sumMask, FloatBuf dSum, LinearWeights w,
                                     FloatBuf product, int rows) {
        int h = config.hidden();
        if (sumMask == null) {
            ops.layerNormGradInputGrad(dy, sum, gamma, config.layerNormEps(), rows, h, dSum, w, product);
            return;
        }
        ops.layerNormGrad(dy, sum, gamma, config.layerNormEps(), rows, h, dSum);
        ops.linearInputGrad(through(dSum, sumMask, rows * h), rows, w, product, false);
    }

    // ---- checks and conversions -------------------------------------------------------------------------

    /** Steps share one class: a predicted target must be fixed on the actual input first (see {@link Target#resolve}). */
    private static void requireResolved(Target target) {
        if (target.isPredicted())
            throw new IllegalArgumentException("resolve a predicted target on the actual input before differentiating a batch of steps");
    }

    /** How many of the forward's linear layers run on the backend's s8 kernels. */
    public int integerLayers() {
        return integerLayers;
    }

    private void checkWords(Sequence s, double[] words) {
        checkSequence(s);
        if (words.length != s.length() * config.hidden())
            throw new IllegalArgumentException("word vectors: " + words.length + " values for " + s.length() + " tokens x " + config.hidden());
    }

    private void checkSequence(Sequence s) {
        if (s.length() > config.maxPositions())
            throw new QdriftException("sequence length " + s.length() + " exceeds the model's " + config.maxPositions() + " positions");
        for (int t = 0; t < s.length(); t++) {
            checkId(s.ids()[t]);
            int tt = s.typeIds()[t];
            if (tt < 0 || tt >= config.typeVocabSize())
                throw new QdriftException("segment id " + tt + " outside the model's " + config.typeVocabSize() + " segment types");
        }
    }

    private void checkId(int id) {
        if (id < 0 || id >= config.vocabSize())
            throw new QdriftException("token id " + id + " outside the model's vocabulary of " + config.vocabSize());
    }

    private static float[] toFloat(double[] a) {
        return toFloat(a, 0, a.length);
    }

    private static float[] toFloat(double[] a, int from, int n) {
        float[] r = new float[n];
        for (int i = 0; i < n; i++) r[i] = (float) a[from + i];
        return r;
    }

    /** a[from + i] / divisors[i] in float32 for i < divisors.length (powers of two: exact). */
    private static float[] divided(double[] a, int from, double[] divisors) {
        float[] r = new float[divisors.length];
        for (int i = 0; i < r.length; i++) r[i] = (float) (a[from + i] / divisors[i]);
        return r;
    }

    private static double[] unscaled(float[] a, int from, int n, double scale) {
        double[] r = new double[n];
        for (int i = 0; i < n; i++) r[i] = a[from + i] / scale;
        return r;
    }

    private static double[] toDouble(float[] a, int from, int n) {
        return unscaled(a, from, n, 1); // a float over 1 in double: the float itself
    }
}
