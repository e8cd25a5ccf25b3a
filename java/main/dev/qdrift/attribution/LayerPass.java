package dev.qdrift.attribution;

import dev.qdrift.model.Site;

/**
 * One encoder layer on one sequence: the forward exactly as {@code Encoder} computes it (post-LN BERT),
 * fake-quantizing the sites the model quantizes, and keeping what the backward needs — q, k, v, the
 * attention probabilities, the LayerNorm statistics, the GELU input, and each quantized site's
 * in-range mask (clipping-aware STE only).
 */
final class LayerPass {
    private final Network net;
    private final Network.Layer w;
    private final int layer, seq;
    private final Precision p;

    private double[] q, k, v, probs, u;
    private Ops.Normed norm1, norm2;
    /** In-range masks of the quantized sites; null where the site is FP32 or the gradient passes everywhere (STE). */
    private boolean[] inCtx, inSum1, inNorm1, inGelu, inSum2, inNorm2;
    // Weight gradients (the fine-tuning seam) would also need each linear layer's input: x, the quantized
    // context, norm1's quantized output and the quantized GELU output. Not kept: nothing here needs them.

    LayerPass(Network net, int layer, int seq, Precision p) {
        this.net = net;
        this.w = net.layers.get(layer);
        this.layer = layer;
        this.seq = seq;
        this.p = p;
    }

    /** x [seq, hidden]: the layer's input (the previous layer's quantized output); returns this layer's output. */
    double[] forward(double[] x) {
        int h = net.config.hidden(), f = net.config.intermediate(), heads = net.config.heads();
        double eps = net.config.layerNormEps();
        q = Ops.linear(x, seq, w.query(), p);
        k = Ops.linear(x, seq, w.key(), p);
        v = Ops.linear(x, seq, w.value(), p);
        probs = new double[heads * seq * seq];
        double[] ctx = Ops.attention(q, k, v, seq, heads, net.config.headDim(), probs, p);
        inCtx = quantize(Site.ATTENTION_CONTEXT, ctx, h);
        double[] sum1 = Ops.add(Ops.linear(ctx, seq, w.attentionOut(), p), x, p);
        inSum1 = quantize(Site.ATTENTION_RESIDUAL, sum1, h);
        norm1 = Ops.layerNorm(sum1, seq, h, w.attentionNorm(), eps, p);
        double[] h1 = norm1.out();
        inNorm1 = quantize(Site.ATTENTION_NORM, h1, h);
        u = Ops.linear(h1, seq, w.intermediate(), p);
        double[] g = Ops.gelu(u, p);
        inGelu = quantize(Site.INTERMEDIATE, g, f);
        double[] sum2 = Ops.add(Ops.linear(g, seq, w.output(), p), h1, p);
        inSum2 = quantize(Site.OUTPUT_RESIDUAL, sum2, h);
        norm2 = Ops.layerNorm(sum2, seq, h, w.outputNorm(), eps, p);
        double[] out = norm2.out();
        inNorm2 = quantize(Site.OUTPUT_NORM, out, h);
        return out;
    }

    /** dOut: d target / d (this layer's output); returns d target / d (its input). Reverses {@link #forward} line by line. */
    double[] backward(double[] dOut) {
        int h = net.config.hidden(), heads = net.config.heads();
        double[] dSum2 = through(Ops.layerNormBackward(through(dOut, inNorm2), norm2, w.outputNorm(), seq, h), inSum2);
        // sum2 = output(g) + h1: the residual hands dSum2 to both branches.
        double[] dG = through(Ops.linearBackward(dSum2, seq, w.output()), inGelu);
        double[] dH1 = Ops.linearBackward(Ops.geluBackward(dG, u), seq, w.intermediate());
        Ops.addInto(dH1, dSum2);
        double[] dSum1 = through(Ops.layerNormBackward(through(dH1, inNorm1), norm1, w.attentionNorm(), seq, h), inSum1);
        // sum1 = attentionOut(ctx) + x.
        double[] dCtx = through(Ops.linearBackward(dSum1, seq, w.attentionOut()), inCtx);
        double[] dq = new double[seq * h], dk = new double[seq * h], dv = new double[seq * h];
        Ops.attentionBackward(dCtx, q, k, v, probs, seq, heads, net.config.headDim(), dq, dk, dv);
        double[] dx = Ops.linearBackward(dq, seq, w.query());
        Ops.addInto(dx, Ops.linearBackward(dk, seq, w.key()));
        Ops.addInto(dx, Ops.linearBackward(dv, seq, w.value()));
        Ops.addInto(dx, dSum1);
        return dx;
    }

    /** Fake-quantizes x in place if the model quantizes this site; returns the in-range mask the backward needs, if any. */
    private boolean[] quantize(Site site, double[] x, int cols) {
        return quantizeSite(net, layer, site, x, seq, cols);
    }

    static boolean[] quantizeSite(Network net, int layer, Site site, double[] x, int rows, int cols) {
        if (!net.sites.at(layer, site)) return null;
        return net.sites.apply(layer, site, x, rows, cols, net.mode == StraightThrough.CLIP_AWARE);
    }

    /** The backward of a fake-quant site: identity (STE), or zero where the clamp acted (clipping-aware). In place. */
    static double[] through(double[] grad, boolean[] inRange) {
        if (inRange != null) for (int i = 0; i < grad.length; i++) if (!inRange[i]) grad[i] = 0;
        return grad;
    }
}
