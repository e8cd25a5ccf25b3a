package dev.qdrift.model.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.qdrift.QdriftException;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * WordPiece tokenization through DJL's Hugging Face tokenizers (the Rust library, natives bundled in
 * the jar), reading the model's own tokenizer.json. Sentences and sentence pairs are truncated to
 * {@code maxLength} (longest-first for pairs, as Hugging Face does); each truncation is counted so a
 * run can report how many inputs lost tokens.
 */
public final class Tokenizer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Tokenizer.class);

    private final HuggingFaceTokenizer hf;
    private final String source;
    private final int maxLength;
    private final int vocabSize;
    private final AtomicLong truncated = new AtomicLong();

    private Tokenizer(HuggingFaceTokenizer hf, String source, int maxLength, int vocabSize) {
        this.hf = hf;
        this.source = source;
        this.maxLength = maxLength;
        this.vocabSize = vocabSize;
    }

    /** The version of DJL's tokenizers library on the class path (its jar's manifest), or "unknown". */
    public static String libraryVersion() {
        String v = HuggingFaceTokenizer.class.getPackage().getSpecificationVersion();
        return v == null ? "unknown" : v;
    }

    /** @param vocabSize the model's embedding rows: a token id at or above it is a tokenizer/model mismatch. */
    public static Tokenizer fromJson(InputStream tokenizerJson, String source, int maxLength, int vocabSize) {
        if (maxLength < 2) throw new QdriftException("max length must be at least 2, got " + maxLength);
        // DJL picks a CUDA build of the tokenizer library when it sees a GPU, and none is bundled (it would
        // try to download one): tokenization runs on the CPU, so ask for the CPU build unless told otherwise.
        if (System.getProperty("RUST_FLAVOR") == null && System.getenv("RUST_FLAVOR") == null) System.setProperty("RUST_FLAVOR", "cpu");
        Map<String, String> options = Map.of(
                "addSpecialTokens", "true",
                "truncation", "true",
                "padding", "false",
                "maxLength", Integer.toString(maxLength));
        try {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson, options), source, maxLength, vocabSize);
        } catch (IOException | RuntimeException e) {
            throw new QdriftException(source + ": cannot load tokenizer: " + e.getMessage(), e);
        }
    }

    /** One input, tokenized: ids with [CLS]/[SEP], segment ids, and for each token its word index (-1 for special tokens). */
    public record Encoded(int[] ids, int[] typeIds, int[] wordIds, String[] tokens, boolean truncated) {
        public int length() {
            return ids.length;
        }
    }

    public Encoded encode(String text, String textPair) {
        if (text == null || text.isEmpty()) throw new QdriftException("cannot tokenize an empty text");
        Encoding e = textPair == null ? hf.encode(text) : hf.encode(text, textPair);
        boolean cut = e.exceedMaxLength();
        if (cut && truncated.incrementAndGet() == 1)
            log.warn("inputs longer than {} tokens are truncated (counted; see the run summary)", maxLength);
        int[] ids = toInt(e.getIds());
        for (int i = 0; i < ids.length; i++)
            if (ids[i] < 0 || ids[i] >= vocabSize)
                throw new QdriftException(source + ": token '" + e.getTokens()[i] + "' has id " + ids[i]
                        + ", outside the model's vocabulary of " + vocabSize + " (tokenizer and weights do not match)");
        long[] special = e.getSpecialTokenMask();
        long[] words = e.getWordIds();
        int[] wordIds = new int[ids.length];
        for (int i = 0; i < ids.length; i++) wordIds[i] = special[i] == 1 ? -1 : (int) words[i];
        return new Encoded(ids, toInt(e.getTypeIds()), wordIds, e.getTokens(), cut);
    }

    public TokenBatch encodeBatch(List<String> texts, List<String> pairs) {
        Encoded[] out = new Encoded[texts.size()];
        for (int i = 0; i < out.length; i++) out[i] = encode(texts.get(i), pairs == null ? null : pairs.get(i));
        return TokenBatch.pad(out);
    }

    /** How many inputs were truncated so far. */
    public long truncatedCount() {
        return truncated.get();
    }

    public int maxLength() {
        return maxLength;
    }

    private static int[] toInt(long[] a) {
        int[] r = new int[a.length];
        for (int i = 0; i < a.length; i++) r[i] = (int) a[i];
        return r;
    }

    @Override
    public void close() {
        hf.close();
    }
}
