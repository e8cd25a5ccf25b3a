package dev.qdrift.attribution;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One score per token of a sequence (an attribution method's output), and its aggregation to words.
 *
 * <p>Words: the wordpieces of one word (same segment, same word id) are summed — attributions are
 * additive (IG's completeness holds for any grouping). Special tokens (word id -1) are left out
 * unless asked for; then each is a unit of its own. Units come in order of their first token.
 */
public record TokenScores(Sequence sequence, double[] values) {

    public TokenScores {
        if (values.length != sequence.length())
            throw new IllegalArgumentException(values.length + " scores for " + sequence.length() + " tokens");
    }

    /** The scores of the non-special tokens (or all), in sequence order. */
    public double[] tokens(boolean includeSpecial) {
        return aggregate(tokenUnits(includeSpecial));
    }

    public double[] words() {
        return words(false);
    }

    public double[] words(boolean includeSpecial) {
        return aggregate(wordUnits(sequence, includeSpecial));
    }

    /** The text of each word (wordpieces joined, "##" removed), parallel to {@link #words(boolean)}; needs token strings. */
    public List<String> wordTexts(boolean includeSpecial) {
        if (sequence.tokens() == null) throw new IllegalStateException("the sequence has no token strings");
        List<String> out = new ArrayList<>();
        for (int[] unit : wordUnits(sequence, includeSpecial)) {
            StringBuilder b = new StringBuilder();
            for (int t : unit) {
                String tok = sequence.tokens()[t];
                b.append(b.length() > 0 && tok.startsWith("##") ? tok.substring(2) : tok);
            }
            out.add(b.toString());
        }
        return out;
    }

    private double[] aggregate(List<int[]> units) {
        double[] out = new double[units.size()];
        for (int u = 0; u < out.length; u++) for (int t : units.get(u)) out[u] += values[t];
        return out;
    }

    private List<int[]> tokenUnits(boolean includeSpecial) {
        List<int[]> units = new ArrayList<>();
        for (int t = 0; t < sequence.length(); t++) if (includeSpecial || !sequence.isSpecial(t)) units.add(new int[] {t});
        return units;
    }

    /** The token positions of each word. */
    static List<int[]> wordUnits(Sequence s, boolean includeSpecial) {
        Map<Long, List<Integer>> words = new LinkedHashMap<>();
        for (int t = 0; t < s.length(); t++) {
            if (s.isSpecial(t) && !includeSpecial) continue;
            // A special token is its own unit; pair inputs number words per segment, hence the segment in the key.
            long key = s.isSpecial(t) ? -1L - t : ((long) s.typeIds()[t] << 32) | s.wordIds()[t];
            words.computeIfAbsent(key, k -> new ArrayList<>()).add(t);
        }
        List<int[]> units = new ArrayList<>();
        for (List<Integer> w : words.values()) units.add(w.stream().mapToInt(Integer::intValue).toArray());
        return units;
    }
}
