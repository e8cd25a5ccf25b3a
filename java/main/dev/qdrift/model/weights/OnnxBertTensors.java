package dev.qdrift.model.weights;

import dev.qdrift.QdriftException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Recovers Hugging Face tensor names from a BERT exported to ONNX. Embeddings, LayerNorms and biases
 * keep their names, but linear weights become anonymous MatMul inputs ("onnx::MatMul_800") stored
 * [in, out]. Which layer a weight belongs to is read from the graph: the MatMul that reads it feeds
 * an Add whose other input is the named bias ("...query.bias"), so the weight is "...query.weight",
 * transposed to [out, in].
 */
public final class OnnxBertTensors {
    private OnnxBertTensors() {}

    public static Map<String, Tensor> namedTensors(OnnxModel model) {
        Map<String, Tensor> named = new LinkedHashMap<>();
        Map<String, Tensor> inits = model.initializers();
        for (Tensor t : inits.values()) if (!isAnonymous(t.name())) named.put(t.name(), t);
        for (OnnxModel.Node matmul : model.nodes()) {
            if (!matmul.opType().equals("MatMul") || matmul.inputs().size() != 2) continue;
            if (matmul.outputs().isEmpty())
                throw new QdriftException(model.source() + ": MatMul '" + matmul.name() + "' has no output");
            Tensor w = inits.get(matmul.inputs().get(1));
            if (w == null) continue; // activation x activation (attention scores)
            if (w.rank() != 2)
                throw new QdriftException(model.source() + ": MatMul '" + matmul.name() + "' weight " + w.name()
                        + " has shape " + w.shapeString() + ", expected a matrix");
            String bias = biasAfter(model, matmul);
            if (bias == null)
                throw new QdriftException(model.source() + ": MatMul '" + matmul.name() + "' (weight " + w.name()
                        + ") is not followed by an Add with a named '.bias' initializer; cannot tell which layer it is");
            String name = bias.substring(0, bias.length() - ".bias".length()) + ".weight";
            Tensor biasTensor = inits.get(bias);
            if (biasTensor.rank() != 1 || biasTensor.dim(0) != w.dim(1))
                throw new QdriftException(model.source() + ": weight " + w.name() + " " + w.shapeString() + " of "
                        + name + " does not match its bias " + bias + " " + biasTensor.shapeString());
            if (named.put(name, rename(w.transposed(), name)) != null)
                throw new QdriftException(model.source() + ": two MatMul weights map to " + name);
        }
        return named;
    }

    private static boolean isAnonymous(String name) {
        return name.startsWith("onnx::");
    }

    private static String biasAfter(OnnxModel model, OnnxModel.Node matmul) {
        for (OnnxModel.Node add : model.consumers(matmul.outputs().get(0))) {
            if (!add.opType().equals("Add")) continue;
            List<String> in = add.inputs();
            for (String s : in)
                if (s.endsWith(".bias") && model.initializers().containsKey(s)) return s;
        }
        return null;
    }

    private static Tensor rename(Tensor t, String name) {
        return new Tensor(name, t.shape(), t.data());
    }
}
