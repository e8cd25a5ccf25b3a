package dev.qdrift.attribution;

import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.head.LinearHead;
import java.util.List;

/**
 * What a forward and backward pass read and never change: the weights, laid out for {@link Ops}, the
 * classifier head, and how quantized activation sites behave in both directions.
 */
final class Network {
    record Layer(Ops.Dense query, Ops.Dense key, Ops.Dense value, Ops.Dense attentionOut, BertWeights.Norm attentionNorm,
                 Ops.Dense intermediate, Ops.Dense output, BertWeights.Norm outputNorm) {}

    final BertConfig config;
    final BertWeights weights;
    final List<Layer> layers;
    final Ops.Dense pooler;
    final LinearHead head;
    final QuantSites sites;
    final StraightThrough mode;

    Network(BertWeights w, LinearHead head, QuantSites sites, StraightThrough mode) {
        this.config = w.config();
        this.weights = w;
        this.layers = w.layers().stream().map(l -> new Layer(Ops.Dense.of(l.query()), Ops.Dense.of(l.key()), Ops.Dense.of(l.value()),
                Ops.Dense.of(l.attentionOutput()), l.attentionNorm(), Ops.Dense.of(l.intermediate()), Ops.Dense.of(l.output()),
                l.outputNorm())).toList();
        this.pooler = w.pooler() == null ? null : Ops.Dense.of(w.pooler());
        this.head = head;
        this.sites = sites;
        this.mode = mode;
    }
}
