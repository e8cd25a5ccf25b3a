package dev.qdrift.model.tokenizer;

/**
 * A batch of tokenized inputs padded to its longest member: row-major [batch, seqLen] ids, segment
 * ids and attention mask (1 = real token, 0 = padding). Padding uses id 0 ([PAD] in BERT vocabularies).
 */
public record TokenBatch(int batch, int seqLen, int[] ids, int[] typeIds, int[] mask, Tokenizer.Encoded[] inputs) {

    public static TokenBatch pad(Tokenizer.Encoded[] inputs) {
        int t = 0;
        for (Tokenizer.Encoded e : inputs) t = Math.max(t, e.length());
        int b = inputs.length;
        int[] ids = new int[b * t], types = new int[b * t], mask = new int[b * t];
        for (int i = 0; i < b; i++) {
            Tokenizer.Encoded e = inputs[i];
            System.arraycopy(e.ids(), 0, ids, i * t, e.length());
            System.arraycopy(e.typeIds(), 0, types, i * t, e.length());
            java.util.Arrays.fill(mask, i * t, i * t + e.length(), 1);
        }
        return new TokenBatch(b, t, ids, types, mask, inputs);
    }

    /** A batch built from raw ids (benchmarks, tests): every row full length, segment 0. */
    public static TokenBatch ofIds(int batch, int seqLen, int[] ids) {
        int[] mask = new int[batch * seqLen];
        java.util.Arrays.fill(mask, 1);
        return new TokenBatch(batch, seqLen, ids, new int[batch * seqLen], mask, null);
    }

    public int length(int row) {
        int n = 0;
        for (int j = 0; j < seqLen; j++) n += mask[row * seqLen + j];
        return n;
    }
}
