package dev.qdrift.model;

import dev.qdrift.QdriftException;

/** How a sentence embedding is taken from the last hidden state. */
public enum Pooling {
    /** The [CLS] token's hidden state. */
    CLS,
    /** Mean over real (unpadded) tokens — what sentence-transformers models such as MiniLM are trained for. */
    MEAN,
    /** BERT's pooler: tanh(W h_CLS + b); needs pooler weights. */
    POOLER;

    public static Pooling parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase());
        } catch (IllegalArgumentException e) {
            throw new QdriftException("unknown pooling '" + s + "': use cls, mean or pooler");
        }
    }

    public String id() {
        return name().toLowerCase();
    }
}
