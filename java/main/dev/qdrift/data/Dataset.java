package dev.qdrift.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * A loaded, labelled data set. Immutable; examples stay in file order.
 *
 * @param name       short name for reports, e.g. {@code "sst2:dev.tsv"} or {@code "demo"}
 * @param source     where it came from: the path as given, or {@code "builtin:demo"}
 * @param labelNames class names; index = label
 * @param examples   the examples in file order
 */
public record Dataset(String name, String source, List<String> labelNames, List<Example> examples) {
    public Dataset {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(source, "source");
        labelNames = List.copyOf(labelNames);
        examples = List.copyOf(examples);
        if (labelNames.isEmpty()) throw new IllegalArgumentException(name + ": no label names");
        for (Example e : examples) {
            if (e.label() >= labelNames.size()) {
                throw new IllegalArgumentException(name + ": label " + e.label() + " out of range for "
                        + labelNames.size() + " classes");
            }
        }
    }

    public int numClasses() {
        return labelNames.size();
    }

    public int size() {
        return examples.size();
    }

    /** Number of examples per class, indexed by label. */
    public int[] classCounts() {
        int[] counts = new int[numClasses()];
        for (Example e : examples) counts[e.label()]++;
        return counts;
    }

    /** True if the examples are sentence pairs (QNLI-style). */
    public boolean isPair() {
        return !examples.isEmpty() && examples.getFirst().isPair();
    }

    /**
     * The first {@code n} examples in file order (all of them if {@code n >= size()}). Cheap and
     * predictable, but files sorted by label give a one-sided prefix: use {@link #sample} for a
     * representative subset.
     */
    public Dataset limit(int n) {
        if (n < 0) throw new IllegalArgumentException("limit must be >= 0, got " + n);
        if (n >= size()) return this;
        return withExamples(examples.subList(0, n));
    }

    /**
     * A seeded stratified sample of {@code n} examples: each class gets its share of {@code n} in
     * proportion to its size (largest-remainder rounding, so the total is exactly {@code n}), the
     * members of each class are picked at random with {@code seed}, and the result is returned in
     * file order. Same seed and data, same sample.
     */
    public Dataset sample(int n, long seed) {
        if (n < 0) throw new IllegalArgumentException("sample size must be >= 0, got " + n);
        if (n >= size()) return this;
        List<List<Integer>> byClass = Stratify.indicesByClass(this);
        int[] quota = Stratify.proportionalQuota(classCounts(), n);
        Random random = new Random(seed);
        List<Integer> chosen = new ArrayList<>(n);
        for (int c = 0; c < numClasses(); c++) {
            List<Integer> shuffled = Stratify.shuffled(byClass.get(c), random);
            chosen.addAll(shuffled.subList(0, quota[c]));
        }
        return withExamples(Stratify.inFileOrder(this, chosen));
    }

    /** Same name, source and labels, other examples. */
    Dataset withExamples(List<Example> subset) {
        return new Dataset(name, source, labelNames, subset);
    }

    /** Same source and labels, other name and examples. */
    Dataset withNameAndExamples(String newName, List<Example> subset) {
        return new Dataset(newName, source, labelNames, subset);
    }
}
