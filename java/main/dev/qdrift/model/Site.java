package dev.qdrift.model;

/**
 * Activation sites of a BERT layer, in forward order: where outlier statistics are taken and where a
 * quantized model quantizes activations. Linear-layer inputs are ATTENTION_INPUT (query, key, value),
 * ATTENTION_CONTEXT (attention output dense), ATTENTION_NORM (intermediate dense) and INTERMEDIATE
 * (output dense).
 */
public enum Site {
    /** LayerNorm output of the embeddings (hidden state 0); layer index -1. */
    EMBEDDINGS,
    /** The hidden state entering a layer: input of the query, key and value projections. */
    ATTENTION_INPUT,
    /** Concatenated head outputs: input of the attention output projection. */
    ATTENTION_CONTEXT,
    /** Attention output projection + layer input, before LayerNorm. */
    ATTENTION_RESIDUAL,
    /** LayerNorm after attention: input of the intermediate (FFN up) projection. */
    ATTENTION_NORM,
    /** GELU output of the FFN: input of the output (FFN down) projection. */
    INTERMEDIATE,
    /** FFN output + ATTENTION_NORM, before LayerNorm. */
    OUTPUT_RESIDUAL,
    /** LayerNorm after the FFN: the layer's output hidden state. */
    OUTPUT_NORM;

    public String key(int layer) {
        return this == EMBEDDINGS ? "embeddings" : "layer." + layer + "." + name().toLowerCase();
    }
}
