package dev.qdrift.metrics;

import java.util.Set;

/**
 * Coarse token types, to see which tokens make an outlier channel fire: BERT's outlier dimensions
 * are known to light up on delimiters, punctuation and frequent function words rather than on
 * content words.
 */
public enum OutlierTokenCategory {
    CLS, SEP, PUNCTUATION, STOPWORD, OTHER;

    /** Deliberately small: the most frequent English function words, as the brief lists them. */
    public static final Set<String> STOPWORDS = Set.of("the", "a", "of", "and", "to", "in", "is", "it", "that");

    /**
     * The category of one WordPiece token as the tokenizer writes it ("[CLS]", "the", "##ing", ".").
     * Punctuation means every character is neither a letter nor a digit ("." "," "'" "?" "##-");
     * stopword matching ignores case (cased vocabularies) but not the "##" continuation prefix, so a
     * word piece inside a longer word is never a stopword.
     */
    public static OutlierTokenCategory of(String token) {
        if (token == null || token.isEmpty()) return OTHER;
        if (token.equals("[CLS]")) return CLS;
        if (token.equals("[SEP]")) return SEP;
        String body = token.startsWith("##") && token.length() > 2 ? token.substring(2) : token;
        if (body.codePoints().noneMatch(Character::isLetterOrDigit)) return PUNCTUATION;
        if (STOPWORDS.contains(token.toLowerCase(java.util.Locale.ROOT))) return STOPWORD;
        return OTHER;
    }

    public String key() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
