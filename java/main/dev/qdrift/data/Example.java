package dev.qdrift.data;

import java.util.Objects;

/**
 * One labelled example.
 *
 * @param text     the (first) sentence, never null or blank
 * @param textPair the second sentence of a pair task such as QNLI, or {@code null} for single-sentence tasks
 * @param label    class index, {@code 0 <= label < dataset.numClasses()}
 */
public record Example(String text, String textPair, int label) {
    public Example {
        Objects.requireNonNull(text, "text");
        // The loader reports blank text with file and line; this only catches programming errors.
        if (text.isBlank()) throw new IllegalArgumentException("blank text");
        if (label < 0) throw new IllegalArgumentException("negative label " + label);
    }

    /** A single-sentence example. */
    public Example(String text, int label) {
        this(text, null, label);
    }

    public boolean isPair() {
        return textPair != null;
    }
}
