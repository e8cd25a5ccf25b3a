package dev.qdrift.model;

import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.model.weights.Tensor;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A loaded encoder: its FP32 weights, its tokenizer, where it came from, and what else the source
 * held — the ONNX file it was read from (the reference `qdrift verify` runs), and a classifier head
 * when the source was a BertForSequenceClassification.
 *
 * @param onnxBytes supplies the model's ONNX file, or null when there is none
 * @param classifier "classifier.weight"/"classifier.bias" from a sequence-classification checkpoint, else empty
 */
public record Model(String id, String provenance, BertWeights weights, Tokenizer tokenizer, Pooling defaultPooling,
                    Supplier<byte[]> onnxBytes, Map<String, Tensor> classifier) {

    public BertConfig config() {
        return weights.config();
    }
}
