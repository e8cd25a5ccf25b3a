package dev.qdrift.attribution;

import dev.qdrift.QdriftException;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.Site;
import dev.qdrift.model.head.LinearHead;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Gradients of a classifier's target (a class logit or log-probability) with respect to the input
 * word-embedding vectors, through a BERT encoder, its pooling and a {@link LinearHead}, on the CPU.
 *
 * <p>The model's input for token t is e_t = v_t + position[t] + type[typeId_t], where v_t is
 * word[id_t] or any vector put in its place (Integrated Gradients' interpolation); then the embedding
 * LayerNorm, the layers as {@code Encoder} computes them, pooling (cls / mean / pooler) and the head.
 * {@link #gradient} returns d target / d v [seq, hidden]; as e_t = v_t + const, that is also
 * d target / d e.
 *
 * <p>What is computed for a quantized model (weights already fake-quantized, e.g. by
 * {@code WeightQuantizer}; activations fake-quantized at {@link QuantSites}): the forward is the
 * quantized model's forward, value for value. The backward is the exact backward of that forward in
 * which every fake-quant y = fq(x) is given the derivative 1 ({@link StraightThrough#STE}) or 1 inside
 * the grid and 0 where the clamp acted ({@link StraightThrough#CLIP_AWARE}). Every other derivative is
 * evaluated at the quantized forward's own cached values (quantized activations feed the next op and
 * its backward) and uses the fake-quantized — that is, dequantized — weights. With no site quantized
 * it is the plain FP32 gradient. Rounding to float32 between operations ({@link Precision#FLOAT32}) is
 * treated the same way, as identity; the backward itself runs in float64.
 *
 * <p>One sequence at a time (see {@link Sequence}); {@link #gradients} takes several word-vector
 * matrices for the same tokens (IG steps) and runs them in parallel. Instances are immutable and
 * thread-safe. {@link BackendGradients} computes the same gradient in float32 on a backend (the GPU).
 */
public final class Gradients implements AttributionModel {
    private final Network net;
    private final Pooling pooling;
    private final Precision precision;

    private Gradients(Network net, Pooling pooling, Precision precision) {
        this.net = net;
        this.pooling = pooling;
        this.precision = precision;
    }

    /**
     * @param weights the model's weights (fake-quantized for a quantized model)
     * @param pooling how the head's embedding is taken; {@link Pooling#POOLER} needs pooler weights
     * @param sites the quantized activation sites ({@link QuantSites#NONE} for FP32)
     */
    public Gradients(BertWeights weights, LinearHead head, Pooling pooling, QuantSites sites, StraightThrough mode, Precision precision) {
        this(new Network(weights, head, sites, mode), pooling, precision);
        if (head.dim() != weights.config().hidden())
            throw new QdriftException("head expects " + head.dim() + "-dim embeddings, the encoder gives " + weights.config().hidden());
        if (pooling == Pooling.POOLER && weights.pooler() == null)
            throw new QdriftException("pooling 'pooler' needs pooler weights, which this model does not have; use cls or mean");
    }

    /** The FP32 model, float32 activations. */
    public static Gradients fp32(BertWeights weights, LinearHead head, Pooling pooling) {
        return new Gradients(weights, head, pooling, QuantSites.NONE, StraightThrough.STE, Precision.FLOAT32);
    }

    /** The same model computed in another precision (FLOAT64 for finite-difference checks). */
    public Gradients withPrecision(Precision p) {
        return new Gradients(net, pooling, p);
    }

    @Override
    public BertConfig config() {
        return net.config;
    }

    @Override
    public LinearHead head() {
        return net.head;
    }

    public Pooling pooling() {
        return pooling;
    }

    public Precision precision() {
        return precision;
    }

    public StraightThrough mode() {
        return net.mode;
    }

    @Override
    public double[] wordVector(int id) {
        int h = net.config.hidden();
        checkId(id);
        double[] v = new double[h];
        for (int d = 0; d < h; d++) v[d] = net.weights.wordEmbeddings()[id * h + d];
        return v;
    }

    @Override
    public Output forward(Sequence s, double[] words) {
        Pass pass = new Pass(s, words);
        return new Output(pass.logits, pass.pooled, pass.last);
    }

    /** In parallel. */
    @Override
    public List<Output> forwards(List<Sequence> seqs) {
        return IntStream.range(0, seqs.size()).parallel().mapToObj(i -> forward(seqs.get(i))).toList();
    }

    @Override
    public Result gradient(Sequence s, double[] words, Target target) {
        Pass pass = new Pass(s, words);
        Target t = target.resolve(pass.logits);
        return new Result(t, t.value(pass.logits), pass.logits, pass.backward(t.gradient(pass.logits)));
    }

    /** In parallel. */
    @Override
    public List<Result> gradients(Sequence s, List<double[]> words, Target target) {
        return IntStream.range(0, words.size()).parallel().mapToObj(i -> gradient(s, words.get(i), target)).toList();
    }

    private void checkId(int id) {
        if (id < 0 || id >= net.config.vocabSize())
            throw new QdriftException("token id " + id + " outside the model's vocabulary of " + net.config.vocabSize());
    }

    /** One forward pass, keeping what its backward needs. */
    private final class Pass {
        final int seq, hidden;
        final Ops.Normed embNorm;
        final boolean[] inEmbeddings;
        final LayerPass[] layers;
        final double[] last, pooledBase, pooled, logits;

        Pass(Sequence s, double[] words) {
            BertConfig c = net.config;
            seq = s.length();
            hidden = c.hidden();
            if (seq > c.maxPositions())
                throw new QdriftException("sequence length " + seq + " exceeds the model's " + c.maxPositions() + " positions");
            if (words.length != seq * hidden)
                throw new IllegalArgumentException("word vectors: " + words.length + " values for " + seq + " tokens x " + hidden);
            double[] e = embed(s, words);
            embNorm = Ops.layerNorm(e, seq, hidden, net.weights.embeddingNorm(), c.layerNormEps(), precision);
            double[] x = embNorm.out();
            inEmbeddings = LayerPass.quantizeSite(net, -1, Site.EMBEDDINGS, x, seq, hidden);
            layers = new LayerPass[c.layers()];
            for (int l = 0; l < layers.length; l++) {
                layers[l] = new LayerPass(net, l, seq, precision);
                x = layers[l].forward(x);
            }
            last = x;
            pooledBase = pool(last);
            pooled = pooling == Pooling.POOLER ? pooler(pooledBase) : pooledBase;
            logits = head(pooled);
        }

        /** e = (word + type) + position, the order of the CPU backend's embed. */
        private double[] embed(Sequence s, double[] words) {
            float[] pos = net.weights.positionEmbeddings(), type = net.weights.typeEmbeddings();
            double[] e = new double[seq * hidden];
            for (int t = 0; t < seq; t++) {
                checkId(s.ids()[t]);
                int tt = s.typeIds()[t];
                if (tt < 0 || tt >= net.config.typeVocabSize())
                    throw new QdriftException("segment id " + tt + " outside the model's " + net.config.typeVocabSize() + " segment types");
                for (int d = 0, o = t * hidden; d < hidden; d++, o++)
                    e[o] = precision.round(precision.round(words[o] + type[tt * hidden + d]) + pos[t * hidden + d]);
            }
            return e;
        }

        private double[] pool(double[] h) {
            double[] out = new double[hidden];
            if (pooling == Pooling.MEAN) {
                for (int t = 0; t < seq; t++) for (int d = 0; d < hidden; d++) out[d] += h[t * hidden + d];
                for (int d = 0; d < hidden; d++) out[d] = precision.round(out[d] / seq);
            } else {
                System.arraycopy(h, 0, out, 0, hidden); // CLS, and the pooler's input
            }
            return out;
        }

        /** BERT's pooler, tanh(W h_CLS + b) (its value is its own derivative's input: 1 - tanh^2). */
        private double[] pooler(double[] cls) {
            double[] y = Ops.linear(cls, 1, net.pooler, precision);
            for (int d = 0; d < hidden; d++) y[d] = precision.round(Math.tanh(y[d]));
            return y;
        }

        private double[] head(double[] emb) {
            float[][] w = net.head.weight();
            double[] z = new double[w.length];
            for (int c = 0; c < w.length; c++) {
                double s = net.head.bias()[c];
                for (int j = 0; j < hidden; j++) s += w[c][j] * emb[j];
                z[c] = precision.round(s);
            }
            return z;
        }

        /** d target / d word vectors, from d target / d logits. */
        double[] backward(double[] dLogits) {
            // Head: d pooled = W^T dLogits (its weight gradient would be dLogits ⊗ pooled).
            double[] dPooled = new double[hidden];
            for (int c = 0; c < dLogits.length; c++)
                for (int j = 0; j < hidden; j++) dPooled[j] += dLogits[c] * net.head.weight()[c][j];
            if (pooling == Pooling.POOLER) {
                // pooled = tanh(pre): d pre = d pooled (1 - pooled^2).
                for (int d = 0; d < hidden; d++) dPooled[d] *= 1 - pooled[d] * pooled[d];
                dPooled = Ops.linearBackward(dPooled, 1, net.pooler);
            }
            double[] dx = new double[seq * hidden];
            if (pooling == Pooling.MEAN) {
                for (int t = 0; t < seq; t++) for (int d = 0; d < hidden; d++) dx[t * hidden + d] = dPooled[d] / seq;
            } else {
                System.arraycopy(dPooled, 0, dx, 0, hidden);
            }
            for (int l = layers.length - 1; l >= 0; l--) dx = layers[l].backward(dx);
            dx = LayerPass.through(dx, inEmbeddings);
            // e = v + type + position: d e / d v is the identity. (The embedding tables' gradients would
            // scatter-add this into word[id_t], position[t] and type[typeId_t].)
            return Ops.layerNormBackward(dx, embNorm, net.weights.embeddingNorm(), seq, hidden);
        }
    }
}
