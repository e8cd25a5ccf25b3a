package dev.qdrift.quant;

import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.BertWeights;
import java.util.ArrayList;
import java.util.List;

/**
 * Fake-quantizes the six linear weights of every layer (symmetric, per-tensor or per-output-channel,
 * range = max |w|); biases, embeddings, LayerNorms and the pooler stay FP32 (a real INT8 kernel adds
 * the bias in the FP32 epilogue).
 */
public final class WeightQuantizer {
    private WeightQuantizer() {}

    public static BertWeights apply(BertWeights w, QuantSpec spec) {
        List<BertWeights.Layer> layers = new ArrayList<>();
        for (BertWeights.Layer l : w.layers())
            layers.add(new BertWeights.Layer(q(l.query(), spec), q(l.key(), spec), q(l.value(), spec), q(l.attentionOutput(), spec),
                    l.attentionNorm(), q(l.intermediate(), spec), q(l.output(), spec), l.outputNorm()));
        return new BertWeights(w.config(), w.wordEmbeddings(), w.positionEmbeddings(), w.typeEmbeddings(), w.embeddingNorm(),
                List.copyOf(layers), w.pooler());
    }

    static BertWeights.Linear q(BertWeights.Linear l, QuantSpec spec) {
        QuantGrid grid = spec.grid();
        boolean perChannel = spec.granularity() == QuantSpec.Granularity.PER_CHANNEL;
        float[] out = new float[l.weight().length];
        float tensorMax = perChannel ? 0 : absMax(l.weight(), 0, l.weight().length);
        for (int r = 0; r < l.out(); r++) {
            float m = perChannel ? absMax(l.weight(), r * l.in(), l.in()) : tensorMax;
            QuantGrid.Params p = grid.params(-m, m);
            for (int k = 0, o = r * l.in(); k < l.in(); k++, o++) out[o] = grid.fakeQuant(l.weight()[o], p);
        }
        return new BertWeights.Linear(l.name(), out, l.bias(), l.out(), l.in());
    }

    private static float absMax(float[] a, int from, int n) {
        float m = 0;
        for (int i = from; i < from + n; i++) m = Math.max(m, Math.abs(a[i]));
        return m;
    }
}
