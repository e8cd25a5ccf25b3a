package dev.qdrift.attribution;

import dev.qdrift.model.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * One unpadded input sequence: token ids, segment ids, and for each token its word index within its
 * segment (-1 for special tokens such as [CLS] and [SEP]); token strings when known.
 *
 * <p>Attribution runs one sequence at a time, so there is no padding. That loses nothing: the encoder
 * gives padded keys attention probability exactly 0 and pools over real tokens only, so a padded
 * row's real tokens compute what the unpadded sequence computes.
 *
 * @param tokens wordpiece strings, or null
 */
public record Sequence(int[] ids, int[] typeIds, int[] wordIds, String[] tokens) {

    public Sequence {
        if (ids.length == 0) throw new IllegalArgumentException("empty sequence");
        if (typeIds.length != ids.length || wordIds.length != ids.length || (tokens != null && tokens.length != ids.length))
            throw new IllegalArgumentException("ids, type ids, word ids and tokens must have the same length");
    }

    public static Sequence of(Tokenizer.Encoded e) {
        return new Sequence(e.ids(), e.typeIds(), e.wordIds(), e.tokens());
    }

    /** Raw ids, segment 0, no special tokens: each token is its own word (tests, synthetic inputs). */
    public static Sequence ofIds(int... ids) {
        int[] words = new int[ids.length];
        Arrays.setAll(words, i -> i);
        return new Sequence(ids.clone(), new int[ids.length], words, null);
    }

    public int length() {
        return ids.length;
    }

    public boolean isSpecial(int t) {
        return wordIds[t] < 0;
    }

    /** The sequence with token t deleted: later tokens move up one position (occlusion by deletion, no re-tokenizing). */
    public Sequence without(int t) {
        if (ids.length == 1) throw new IllegalArgumentException("cannot delete the only token");
        return new Sequence(remove(ids, t), remove(typeIds, t), remove(wordIds, t), tokens == null ? null : remove(tokens, t));
    }

    private static int[] remove(int[] a, int t) {
        int[] r = new int[a.length - 1];
        System.arraycopy(a, 0, r, 0, t);
        System.arraycopy(a, t + 1, r, t, a.length - t - 1);
        return r;
    }

    private static String[] remove(String[] a, int t) {
        String[] r = new String[a.length - 1];
        System.arraycopy(a, 0, r, 0, t);
        System.arraycopy(a, t + 1, r, t, a.length - t - 1);
        return r;
    }
}
