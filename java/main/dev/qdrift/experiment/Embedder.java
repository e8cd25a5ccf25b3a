package dev.qdrift.experiment;

import dev.qdrift.data.Dataset;
import dev.qdrift.data.Example;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.stream.IntStream;

/**
 * Runs a data set through an encoder in batches. Examples are batched in order of token length so a
 * batch carries little padding; results come back in data-set order.
 */
public final class Embedder {
    private final Encoder encoder;
    private final Tokenizer tokenizer;
    private final int batchSize;

    public Embedder(Encoder encoder, Tokenizer tokenizer, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be positive");
        this.encoder = encoder;
        this.tokenizer = tokenizer;
        this.batchSize = batchSize;
    }

    public List<Tokenizer.Encoded> tokenize(Dataset d) {
        return d.examples().stream().map(e -> tokenizer.encode(e.text(), e.textPair())).toList();
    }

    /** Pooled embeddings [examples][hidden]. */
    public float[][] embed(Dataset d, Pooling pooling) {
        int h = encoder.config().hidden();
        float[][] out = new float[d.size()][];
        forEachBatch(d, (rows, batch) -> {
            float[] pooled = encoder.embed(batch, pooling);
            for (int i = 0; i < rows.length; i++) {
                float[] v = new float[h];
                System.arraycopy(pooled, i * h, v, 0, h);
                out[rows[i]] = v;
            }
        });
        return out;
    }

    /** Calls back with each batch's data-set row indices and its padded tokens, with a progress bar. */
    public void forEachBatch(Dataset d, BiConsumer<int[], TokenBatch> sink) {
        List<Tokenizer.Encoded> enc = tokenize(d);
        int[] order = IntStream.range(0, enc.size()).boxed()
                .sorted(Comparator.comparingInt(i -> enc.get(i).length())).mapToInt(Integer::intValue).toArray();
        Progress progress = new Progress(d.name(), d.size());
        for (int s = 0; s < order.length; s += batchSize) {
            int[] rows = java.util.Arrays.copyOfRange(order, s, Math.min(order.length, s + batchSize));
            List<Tokenizer.Encoded> batch = new ArrayList<>(rows.length);
            for (int r : rows) batch.add(enc.get(r));
            sink.accept(rows, TokenBatch.pad(batch.toArray(Tokenizer.Encoded[]::new)));
            progress.advance(rows.length);
        }
    }

    public static int[] labels(Dataset d) {
        return d.examples().stream().mapToInt(Example::label).toArray();
    }
}
