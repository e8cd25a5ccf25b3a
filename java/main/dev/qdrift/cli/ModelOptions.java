package dev.qdrift.cli;

import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import picocli.CommandLine.Option;

/** --model, --max-length, --batch-size: shared by every command that runs an encoder. */
public final class ModelOptions {
    @Option(names = "--model", defaultValue = "builtin:minilm",
            description = "builtin:minilm, builtin:bge-small, a Hugging Face model directory or an .onnx file (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--max-length", defaultValue = "128", description = "tokens per input, longer inputs are truncated (default: ${DEFAULT-VALUE})")
    int maxLength;

    @Option(names = "--batch-size", defaultValue = "32", description = "inputs per forward pass (default: ${DEFAULT-VALUE})")
    int batchSize;

    Model load() {
        return ModelLoader.load(model, maxLength);
    }
}
