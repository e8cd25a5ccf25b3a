package dev.qdrift.model;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.Epilogue;
import dev.qdrift.backend.Backend.FloatBuf;
import dev.qdrift.backend.Backend.IntBuf;
import dev.qdrift.backend.Backend.LinearWeights;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.ArrayList;
import java.util.List;

/**
 * The BERT encoder forward pass, written once against {@link Backend}: embeddings, then per layer
 * multi-head self-attention and a GELU feed-forward block, each closed by a residual add and
 * LayerNorm (post-norm, as in BERT). Weights are placed on the backend once, at construction.
 */
public final class Encoder {
    private final BertConfig config;
    private final Backend backend;
    private final FloatBuf word, position, type, embGamma, embBeta;
    private final List<LayerOnBackend> layers = new ArrayList<>();
    private final LinearWeights pooler;
    private final ActivationTransform transform;

    private record LayerOnBackend(LinearWeights queryKeyValue, LinearWeights attentionOut,
                                  FloatBuf attnGamma, FloatBuf attnBeta, LinearWeights intermediate, LinearWeights output,
                                  FloatBuf outGamma, FloatBuf outBeta) {}

    public Encoder(BertWeights w, Backend backend) {
        this(w, backend, ActivationTransform.NONE);
    }

    /** An encoder whose activations are changed at some sites (a quantized model: fake-quant weights + transform). */
    public Encoder(BertWeights w, Backend backend, ActivationTransform transform) {
        this(w, backend, transform, (layer, linear) -> null);
    }

    /**
     * Which linear layers run in integers: the static per-tensor scale their input is quantized with,
     * NaN for per-token scales, or null to keep the layer in floating point. linear indexes
     * {@link BertWeights.Layer#linears()}: query, key, value, attention output, intermediate, output.
     */
    public interface IntegerLinears {
        Float inputScale(int layer, int linear);

        /**
         * The scale of the layer's packed query-key-value product ({@link BertWeights.Layer#queryKeyValue}): query, key
         * and value read one input, so they must agree on how it is quantized.
         */
        default Float queryKeyValueScale(int layer) {
            Float q = inputScale(layer, 0);
            if (!java.util.Objects.equals(q, inputScale(layer, 1)) || !java.util.Objects.equals(q, inputScale(layer, 2)))
                throw new QdriftException("layer " + layer + ": query, key and value read one input but are given the input scales "
                        + q + ", " + inputScale(layer, 1) + " and " + inputScale(layer, 2));
            return q;
        }
    }

    /** A quantized encoder whose chosen linear layers execute as s8 x s8 GEMMs on backends that have them. */
    public Encoder(BertWeights w, Backend backend, ActivationTransform transform, IntegerLinears integer) {
        this.config = w.config();
        this.backend = backend;
        this.transform = transform;
        word = backend.upload(w.wordEmbeddings());
        position = backend.upload(w.positionEmbeddings());
        type = backend.upload(w.typeEmbeddings());
        embGamma = backend.upload(w.embeddingNorm().gamma());
        embBeta = backend.upload(w.embeddingNorm().beta());
        for (int i = 0; i < w.layers().size(); i++) {
            BertWeights.Layer l = w.layers().get(i);
            layers.add(new LayerOnBackend(prepare(backend, l.queryKeyValue(), integer.queryKeyValueScale(i)),
                    prepare(backend, l.attentionOutput(), integer.inputScale(i, 3)),
                    backend.upload(l.attentionNorm().gamma()), backend.upload(l.attentionNorm().beta()),
                    prepare(backend, l.intermediate(), integer.inputScale(i, 4)), prepare(backend, l.output(), integer.inputScale(i, 5)),
                    backend.upload(l.outputNorm().gamma()), backend.upload(l.outputNorm().beta())));
        }
        pooler = w.pooler() == null ? null : backend.prepareLinear(w.pooler());
    }

    private static LinearWeights prepare(Backend backend, BertWeights.Linear l, Float integerInputScale) {
        if (integerInputScale == null) return backend.prepareLinear(l);
        LinearWeights q = backend.prepareInt8Linear(l, integerInputScale);
        if (q == null) throw new QdriftException(backend.name() + " has no integer kernels: run integer execution with --device cuda");
        return q;
    }

    public BertConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public boolean hasPooler() {
        return pooler != null;
    }

    /** Last hidden state [batch, seq, hidden] (null when not asked for) and the pooled sentence embeddings [batch, hidden]. */
    public record Output(int batch, int seq, int hidden, float[] lastHidden, float[] pooled) {}

    public Output forward(TokenBatch in, Pooling pooling) {
        return forward(in, pooling, null);
    }

    public Output forward(TokenBatch in, Pooling pooling, ActivationObserver observer) {
        try (Backend.Scope scope = backend.openScope()) {
            return forwardInScope(in, pooling, observer, true);
        }
    }

    /** Only the pooled sentence embeddings [batch, hidden]: the last hidden state stays on the backend. */
    public float[] embed(TokenBatch in, Pooling pooling) {
        try (Backend.Scope scope = backend.openScope()) {
            return forwardInScope(in, pooling, null, false).pooled();
        }
    }

    private Output forwardInScope(TokenBatch in, Pooling pooling, ActivationObserver observer, boolean downloadLastHidden) {
        int b = in.batch(), t = in.seqLen(), h = config.hidden();
        IntBuf ids = backend.uploadInts(in.ids()), types = backend.uploadInts(in.typeIds()), mask = backend.uploadInts(in.mask());
        OnBackend out = run(ids, types, mask, b, t, pooling, observer);
        float[] last = null;
        if (downloadLastHidden) {
            last = new float[b * t * h];
            backend.download(out.lastHidden, last);
        }
        float[] pooledHost = new float[b * h];
        backend.download(out.pooled, pooledHost);
        return new Output(b, t, h, last, pooledHost);
    }

    /** The results of a forward pass, still on the backend. */
    public record OnBackend(FloatBuf lastHidden, FloatBuf pooled) {}

    /**
     * The forward pass on inputs already on the backend ([batch, seq] ids, segment ids, mask): only
     * queues work, never waits for it (unless an observer downloads), so a CUDA graph can capture it.
     * Buffers come from the backend's current scope.
     */
    public OnBackend run(IntBuf ids, IntBuf types, IntBuf mask, int b, int t, Pooling pooling, ActivationObserver observer) {
        int h = config.hidden(), f = config.intermediate(), rows = b * t;
        if (t > config.maxPositions())
            throw new QdriftException("sequence length " + t + " exceeds the model's " + config.maxPositions() + " positions");
        if (pooling == Pooling.POOLER && pooler == null)
            throw new QdriftException("pooling 'pooler' needs pooler weights, which this model does not have; use cls or mean");
        // qkv: each token's q | k | v; once attention has read it, the attention output and FFN output's scratch.
        FloatBuf x = backend.allocate(rows * h), qkv = backend.allocate(rows * 3 * h), ctx = backend.allocate(rows * h),
                ffn = backend.allocate(rows * f);
        boolean residualSums = wants(observer, Site.ATTENTION_RESIDUAL) || wants(observer, Site.OUTPUT_RESIDUAL)
                || transforms(Site.ATTENTION_RESIDUAL) || transforms(Site.OUTPUT_RESIDUAL);
        FloatBuf sum = residualSums ? backend.allocate(rows * h) : null;

        backend.embed(ids, types, word, position, type, b, t, h, x);
        Backend.ColumnGrid embeddings = transform.columnGrid(-1, Site.EMBEDDINGS);
        // Each LayerNorm feeds a linear layer (the next query-key-value, the intermediate): in one pass where the backend
        // fuses them (residualNorm's rule), else the layer runs after it. The LayerNorm reads the branch from qkv before
        // the layer writes qkv (stream order).
        boolean qkvDone = !layers.isEmpty() && (embeddings != null || !transform.at(-1, Site.EMBEDDINGS))
                && backend.addLayerNormIntoLinear(x, null, null, embeddings, embGamma, embBeta, config.layerNormEps(), rows, h, x, null,
                        layers.get(0).queryKeyValue, Epilogue.NONE, qkv);
        if (!qkvDone) backend.addLayerNormQuantized(x, null, null, embeddings, embGamma, embBeta, config.layerNormEps(), rows, h, x, null);
        normSite(observer, -1, Site.EMBEDDINGS, embeddings, x, rows);
        for (int l = 0; l < layers.size(); l++) {
            LayerOnBackend L = layers.get(l);
            // ATTENTION_INPUT is the tensor OUTPUT_NORM / EMBEDDINGS just produced: observed, never transformed twice.
            observe(observer, l, Site.ATTENTION_INPUT, x, rows, h);
            if (!qkvDone) backend.linear(x, rows, L.queryKeyValue, Epilogue.NONE, qkv);
            backend.attention(qkv, mask, b, t, config.heads(), config.headDim(), ctx);
            siteThenLinear(observer, l, Site.ATTENTION_CONTEXT, ctx, rows, h, L.attentionOut, qkv);
            if (!residualNorm(observer, l, Site.ATTENTION_RESIDUAL, Site.ATTENTION_NORM, qkv, x, L.attnGamma, L.attnBeta, sum, rows,
                    L.intermediate, Epilogue.GELU, ffn))
                backend.linear(x, rows, L.intermediate, Epilogue.GELU, ffn);
            siteThenLinear(observer, l, Site.INTERMEDIATE, ffn, rows, f, L.output, qkv);
            qkvDone = residualNorm(observer, l, Site.OUTPUT_RESIDUAL, Site.OUTPUT_NORM, qkv, x, L.outGamma, L.outBeta, sum, rows,
                    l + 1 < layers.size() ? layers.get(l + 1).queryKeyValue : null, Epilogue.NONE, qkv);
        }
        return new OnBackend(x, pool(backend, x, mask, b, t, h, pooling, pooler));
    }

    /**
     * The pooled vectors [batch, hidden] of the last hidden states x [batch, seq, hidden]: CLS or the masked mean, then
     * for the pooler its tanh layer (pooler: its weights on the backend, else unused).
     */
    public static FloatBuf pool(Backend backend, FloatBuf x, IntBuf mask, int batch, int seq, int hidden, Pooling pooling,
                                LinearWeights pooler) {
        FloatBuf pooled = backend.allocate(batch * hidden);
        backend.pool(x, mask, batch, seq, hidden, pooling == Pooling.MEAN ? Backend.Pooling.MEAN : Backend.Pooling.CLS, pooled);
        if (pooling != Pooling.POOLER) return pooled;
        FloatBuf p = backend.allocate(batch * hidden);
        backend.linear(pooled, batch, pooler, Epilogue.TANH, p);
        return p;
    }

    /**
     * x = LayerNorm(branch + x) with its two sites: the pre-norm sum (sumSite; materialized only when a transform or
     * observer needs it) and the output (normSite). Sites on a static grid are quantized inside the LayerNorm's pass.
     * Then, where the backend fuses it and the output's site is quantized inside the pass (or not at all), y =
     * epilogue(next(x)) in the same pass: returns whether it did (next null: never).
     */
    private boolean residualNorm(ActivationObserver observer, int l, Site sumSite, Site normSite, FloatBuf branch, FloatBuf x,
                                 FloatBuf gamma, FloatBuf beta, FloatBuf sum, int rows, LinearWeights next, Epilogue epilogue, FloatBuf y) {
        int h = config.hidden();
        float eps = config.layerNormEps();
        boolean quantizeSum = transform.at(l, sumSite), done = false;
        Backend.ColumnGrid sumGrid = transform.columnGrid(l, sumSite), outGrid = transform.columnGrid(l, normSite);
        if (quantizeSum && sumGrid == null) { // a range taken at run time: the sum quantized between two LayerNorms
            backend.addLayerNorm(branch, x, gamma, beta, eps, rows, h, x, sum);
            transform.apply(l, sumSite, sum, rows, h);
            backend.addLayerNormQuantized(sum, null, null, outGrid, gamma, beta, eps, rows, h, x, null);
        } else {
            FloatBuf keep = quantizeSum || wants(observer, sumSite) ? sum : null;
            done = next != null && (outGrid != null || !transform.at(l, normSite))
                    && backend.addLayerNormIntoLinear(branch, x, sumGrid, outGrid, gamma, beta, eps, rows, h, x, keep, next, epilogue, y);
            if (!done) backend.addLayerNormQuantized(branch, x, sumGrid, outGrid, gamma, beta, eps, rows, h, x, keep);
        }
        observe(observer, l, sumSite, sum, rows, h);
        normSite(observer, l, normSite, outGrid, x, rows);
        return done;
    }

    /** A LayerNorm output's site: quantized already when it has a static grid (the LayerNorm did it), else here; then observed. */
    private void normSite(ActivationObserver observer, int l, Site s, Backend.ColumnGrid fused, FloatBuf x, int rows) {
        if (fused == null) site(observer, l, s, x, rows, config.hidden());
        else observe(observer, l, s, x, rows, config.hidden());
    }

    private boolean transforms(Site s) {
        for (int l = 0; l < layers.size(); l++) if (transform.at(l, s)) return true;
        return false;
    }

    /**
     * y = next(the site v): in one pass where the backend fuses the site into the layer (a site on a static grid, or not
     * quantized, that no observer reads; the GPU's s8 layers), leaving v itself unquantized; else the site in place, then
     * the layer.
     */
    private void siteThenLinear(ActivationObserver observer, int l, Site s, FloatBuf v, int rows, int cols, LinearWeights next, FloatBuf y) {
        Backend.ColumnGrid grid = transform.columnGrid(l, s);
        boolean apart = wants(observer, s) || grid == null && transform.at(l, s);
        if (apart || !backend.siteIntoLinear(v, rows, cols, false, grid, next, y)) {
            site(observer, l, s, v, rows, cols);
            backend.linear(v, rows, next, Epilogue.NONE, y);
        }
    }

    /** Transform (if the site is quantized), then observe. */
    private void site(ActivationObserver observer, int layer, Site s, FloatBuf v, int rows, int cols) {
        if (transform.at(layer, s)) transform.apply(layer, s, v, rows, cols);
        observe(observer, layer, s, v, rows, cols);
    }

    private static boolean wants(ActivationObserver o, Site s) {
        return o != null && o.wants(s);
    }

    private static void observe(ActivationObserver o, int layer, Site s, FloatBuf v, int rows, int cols) {
        if (o != null && o.wants(s)) o.observe(layer, s, v, rows, cols);
    }
}
