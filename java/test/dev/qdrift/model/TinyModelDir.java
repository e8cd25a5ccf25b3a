package dev.qdrift.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.model.weights.Safetensors;
import dev.qdrift.model.weights.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Model directories in the Hugging Face layout (config.json, model.safetensors, tokenizer.json) for
 * tests: MiniLM-shaped ones from given tensors, and a tiny one — 2 layers, hidden 8, seeded random
 * weights, MiniLM's real vocabulary and tokenizer — that loads and runs in milliseconds, so tests can
 * run whole commands on it.
 */
public final class TinyModelDir {
    public static final int HIDDEN = 8, FFN = 16, LAYERS = 2;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static byte[] tokenizerJson;

    private TinyModelDir() {}

    /** The tiny model, unedited. */
    public static void write(Path d) throws IOException {
        write(d, c -> {}, t -> {});
    }

    /** The tiny model (seeded random weights), with the config and the tensor map edited first. */
    public static void write(Path d, Consumer<ObjectNode> editConfig, Consumer<Map<String, Tensor>> editTensors) throws IOException {
        BertConfig c = new BertConfig(30522, HIDDEN, LAYERS, 2, FFN, 512, 2, 1e-12f);
        Random rnd = new Random(1);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        put(tensors, randomTensor("embeddings.word_embeddings.weight", rnd, c.vocabSize(), HIDDEN));
        put(tensors, randomTensor("embeddings.position_embeddings.weight", rnd, c.maxPositions(), HIDDEN));
        put(tensors, randomTensor("embeddings.token_type_embeddings.weight", rnd, 2, HIDDEN));
        put(tensors, randomTensor("embeddings.LayerNorm.weight", rnd, HIDDEN));
        put(tensors, randomTensor("embeddings.LayerNorm.bias", rnd, HIDDEN));
        for (int l = 0; l < LAYERS; l++) {
            String p = "encoder.layer." + l + ".";
            for (String lin : List.of("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")) {
                put(tensors, randomTensor(p + lin + ".weight", rnd, HIDDEN, HIDDEN));
                put(tensors, randomTensor(p + lin + ".bias", rnd, HIDDEN));
            }
            put(tensors, randomTensor(p + "intermediate.dense.weight", rnd, FFN, HIDDEN));
            put(tensors, randomTensor(p + "intermediate.dense.bias", rnd, FFN));
            put(tensors, randomTensor(p + "output.dense.weight", rnd, HIDDEN, FFN));
            put(tensors, randomTensor(p + "output.dense.bias", rnd, HIDDEN));
            for (String norm : List.of("attention.output.LayerNorm", "output.LayerNorm")) {
                put(tensors, randomTensor(p + norm + ".weight", rnd, HIDDEN));
                put(tensors, randomTensor(p + norm + ".bias", rnd, HIDDEN));
            }
        }
        editTensors.accept(tensors);
        writeHfDir(d, new ArrayList<>(tensors.values()), config -> {
            config.put("hidden_size", HIDDEN);
            config.put("num_hidden_layers", LAYERS);
            config.put("num_attention_heads", 2);
            config.put("intermediate_size", FFN);
            editConfig.accept(config);
        });
    }

    /** A directory with these tensors, MiniLM's config (edited first) and MiniLM's tokenizer.json. */
    public static void writeHfDir(Path d, List<Tensor> tensors, Consumer<ObjectNode> editConfig) throws IOException {
        Files.createDirectories(d);
        Safetensors.write(d.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        ObjectNode config = miniLmConfig();
        editConfig.accept(config);
        Files.writeString(d.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        Files.write(d.resolve("tokenizer.json"), tokenizerJson());
    }

    /** N(0, 0.05²) values. */
    public static Tensor randomTensor(String name, Random rnd, int... shape) {
        float[] d = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < d.length; i++) d[i] = (float) (rnd.nextGaussian() * 0.05);
        return new Tensor(name, shape, d);
    }

    /** all-MiniLM-L6-v2's tokenizer.json, from the built-in model's jar. */
    public static synchronized byte[] tokenizerJson() {
        if (tokenizerJson == null) {
            try (InputStream in = TinyModelDir.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2-tokenizer.json")) {
                if (in == null) throw new IllegalStateException("all-minilm-l6-v2-tokenizer.json is not on the class path");
                tokenizerJson = in.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return tokenizerJson;
    }

    private static ObjectNode miniLmConfig() {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("BertModel");
        c.put("model_type", "bert");
        c.put("vocab_size", 30522);
        c.put("hidden_size", 384);
        c.put("num_hidden_layers", 6);
        c.put("num_attention_heads", 12);
        c.put("intermediate_size", 1536);
        c.put("max_position_embeddings", 512);
        c.put("type_vocab_size", 2);
        c.put("layer_norm_eps", 1e-12);
        c.put("hidden_act", "gelu");
        return c;
    }

    private static void put(Map<String, Tensor> m, Tensor t) {
        m.put(t.name(), t);
    }
}
