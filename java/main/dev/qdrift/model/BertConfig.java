package dev.qdrift.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.QdriftException;
import java.io.IOException;
import java.nio.file.Path;

/** The shape of a BERT encoder, as in a Hugging Face config.json. */
public record BertConfig(int vocabSize, int hidden, int layers, int heads, int intermediate,
                         int maxPositions, int typeVocabSize, float layerNormEps) {

    public BertConfig {
        if (vocabSize <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || intermediate <= 0
                || maxPositions <= 0 || typeVocabSize <= 0 || !(layerNormEps > 0))
            throw new QdriftException("invalid BERT config: every size must be positive: " + summary(vocabSize, hidden,
                    layers, heads, intermediate, maxPositions, typeVocabSize, layerNormEps));
        if (hidden % heads != 0)
            throw new QdriftException("invalid BERT config: hidden size " + hidden + " is not divisible by " + heads + " heads");
    }

    public int headDim() {
        return hidden / heads;
    }

    /** all-MiniLM-L6-v2 (sentence-transformers). */
    public static final BertConfig MINILM_L6 = new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12f);
    /** BAAI/bge-small-en-v1.5. */
    public static final BertConfig BGE_SMALL = new BertConfig(30522, 384, 12, 12, 1536, 512, 2, 1e-12f);
    /** bert-base-uncased: the shape of the published outlier study, used with seeded random weights. */
    public static final BertConfig BERT_BASE = new BertConfig(30522, 768, 12, 12, 3072, 512, 2, 1e-12f);

    public static BertConfig readHuggingFace(Path configJson) {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(configJson.toFile());
        } catch (IOException e) {
            throw new QdriftException(configJson + ": cannot read config.json: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) throw new QdriftException(configJson + ": config.json is not a JSON object");
        String act = n.path("hidden_act").asText("gelu");
        if (!act.equals("gelu"))
            throw new QdriftException(configJson + ": hidden_act '" + act + "' is not supported (qdrift implements exact-erf 'gelu')");
        String type = n.path("position_embedding_type").asText("absolute");
        if (!type.equals("absolute"))
            throw new QdriftException(configJson + ": position_embedding_type '" + type + "' is not supported (only 'absolute')");
        try {
            return new BertConfig(intField(n, "vocab_size", configJson), intField(n, "hidden_size", configJson),
                intField(n, "num_hidden_layers", configJson), intField(n, "num_attention_heads", configJson),
                intField(n, "intermediate_size", configJson), intField(n, "max_position_embeddings", configJson),
                n.path("type_vocab_size").asInt(2), (float) n.path("layer_norm_eps").asDouble(1e-12));
        } catch (QdriftException e) {
            if (e.getMessage().startsWith(configJson.toString())) throw e;
            throw new QdriftException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static int intField(JsonNode n, String field, Path file) {
        JsonNode v = n.get(field);
        if (v == null || !v.canConvertToInt())
            throw new QdriftException(file + ": config.json field '" + field + "' is missing or not an integer");
        return v.asInt();
    }

    private static String summary(Object... values) {
        return java.util.Arrays.toString(values);
    }
}
