package dev.qdrift.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/** Helpers shared by {@link Dataset#sample} and {@link Splits}: per-class index lists and seeded picks. */
final class Stratify {
    private Stratify() {}

    /** For each class, the indices of its examples in file order. */
    static List<List<Integer>> indicesByClass(Dataset d) {
        List<List<Integer>> byClass = new ArrayList<>();
        for (int c = 0; c < d.numClasses(); c++) byClass.add(new ArrayList<>());
        for (int i = 0; i < d.size(); i++) byClass.get(d.examples().get(i).label()).add(i);
        return byClass;
    }

    /**
     * A shuffled copy. {@link Collections#shuffle(List, Random)} with {@link Random} is fully
     * specified by the JDK, so a seed gives the same order on every JVM version.
     */
    static List<Integer> shuffled(List<Integer> indices, Random random) {
        List<Integer> copy = new ArrayList<>(indices);
        Collections.shuffle(copy, random);
        return copy;
    }

    /** The examples at {@code indices}, sorted back into file order. */
    static List<Example> inFileOrder(Dataset d, List<Integer> indices) {
        List<Integer> sorted = new ArrayList<>(indices);
        Collections.sort(sorted);
        List<Example> out = new ArrayList<>(sorted.size());
        for (int i : sorted) out.add(d.examples().get(i));
        return out;
    }

    /**
     * Splits {@code n} over classes in proportion to {@code counts} so the quotas sum to exactly
     * {@code n} (largest remainder method; ties go to the lower class index, for determinism).
     * Requires {@code n <= sum(counts)}; no quota exceeds its class count.
     */
    static int[] proportionalQuota(int[] counts, int n) {
        long total = 0;
        for (int c : counts) total += c;
        int[] quota = new int[counts.length];
        double[] remainder = new double[counts.length];
        int assigned = 0;
        for (int c = 0; c < counts.length; c++) {
            double exact = (double) n * counts[c] / total;
            quota[c] = (int) Math.floor(exact);
            remainder[c] = exact - quota[c];
            assigned += quota[c];
        }
        while (assigned < n) {
            int best = -1;
            for (int c = 0; c < counts.length; c++) {
                if (quota[c] < counts[c] && (best < 0 || remainder[c] > remainder[best])) best = c;
            }
            quota[best]++;
            remainder[best] = -1; // each class gets at most one extra
            assigned++;
        }
        return quota;
    }
}
