package dev.qdrift.attribution;

import dev.qdrift.QdriftException;
import dev.qdrift.model.tokenizer.Tokenizer;

/**
 * Integrated Gradients' reference input: what each token's word vector is replaced by. Special tokens
 * ([CLS], [SEP]) keep their own vectors unless replaceSpecial — the common choice for BERT (Captum's
 * tutorial keeps them), which gives them attribution exactly 0.
 *
 * @param tokenId the token whose embedding row replaces words, or -1 for the zero vector
 */
public record Baseline(String name, int tokenId, boolean replaceSpecial) {

    public static Baseline zero() {
        return new Baseline("zero", -1, false);
    }

    /** The [PAD] embedding (id 0 in BERT vocabularies; {@link #pad(Tokenizer)} looks it up). */
    public static Baseline pad(int padId) {
        return new Baseline("pad", padId, false);
    }

    public static Baseline mask(int maskId) {
        return new Baseline("mask", maskId, false);
    }

    public static Baseline pad(Tokenizer tokenizer) {
        return pad(specialTokenId(tokenizer, "[PAD]"));
    }

    public static Baseline mask(Tokenizer tokenizer) {
        return mask(specialTokenId(tokenizer, "[MASK]"));
    }

    public Baseline replacingSpecialTokens() {
        return new Baseline(name, tokenId, true);
    }

    /** The baseline's word vectors [seq, hidden] for a sequence. */
    public double[] wordVectors(AttributionModel g, Sequence s) {
        int h = g.config().hidden();
        double[] words = g.wordVectors(s);
        double[] replacement = tokenId < 0 ? new double[h] : g.wordVector(tokenId);
        for (int t = 0; t < s.length(); t++)
            if (replaceSpecial || !s.isSpecial(t)) System.arraycopy(replacement, 0, words, t * h, h);
        return words;
    }

    /**
     * The id of a special token such as "[MASK]": the tokenizer keeps added special tokens whole, so
     * encoding the token's own text gives [CLS] token [SEP].
     */
    static int specialTokenId(Tokenizer tokenizer, String token) {
        Tokenizer.Encoded e = tokenizer.encode(token, null);
        for (int i = 0; i < e.length(); i++) if (token.equals(e.tokens()[i])) return e.ids()[i];
        throw new QdriftException("the tokenizer has no " + token + " token");
    }
}
