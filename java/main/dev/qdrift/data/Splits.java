package dev.qdrift.data;

import dev.qdrift.QdriftException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Seeded train/test splitting, for data sets that come without a train split (AG News, QNLI here). */
public final class Splits {
    private Splits() {}

    /**
     * Splits each class separately so both sides keep the class proportions: a class of {@code m}
     * examples puts {@code round(m * trainFraction)} of them, chosen at random with {@code seed}, in
     * train and the rest in test — but never all on one side when {@code m >= 2}. A class with a
     * single example goes to train (a probe cannot learn a class it never sees). Both sides keep
     * file order. Same data and seed, same split.
     *
     * @throws QdriftException if {@code trainFraction} is not strictly between 0 and 1, or the data
     *     set is too small for a test side
     */
    public static Split stratified(Dataset d, double trainFraction, long seed) {
        if (!(trainFraction > 0 && trainFraction < 1)) { // also rejects NaN
            throw new QdriftException("train fraction must be strictly between 0 and 1, got " + trainFraction);
        }
        List<List<Integer>> byClass = Stratify.indicesByClass(d);
        Random random = new Random(seed);
        List<Integer> train = new ArrayList<>();
        List<Integer> test = new ArrayList<>();
        for (List<Integer> members : byClass) {
            int m = members.size();
            int nTrain = (int) Math.round(m * trainFraction);
            if (m >= 2) nTrain = Math.clamp(nTrain, 1, m - 1);
            else nTrain = m;
            // One Random for all classes, drawn in class order: the split depends only on the seed,
            // the fraction and the class sizes, not on how the file interleaves the classes.
            List<Integer> shuffled = Stratify.shuffled(members, random);
            train.addAll(shuffled.subList(0, nTrain));
            test.addAll(shuffled.subList(nTrain, m));
        }
        if (test.isEmpty()) {
            throw new QdriftException(d.source() + ": cannot split " + d.size()
                    + " examples: no class has the 2 examples needed to put one on each side");
        }
        String tag = "[seed " + seed + ", train " + trainFraction + "]";
        return new Split(
                d.withNameAndExamples(d.name() + ":train" + tag, Stratify.inFileOrder(d, train)),
                d.withNameAndExamples(d.name() + ":test" + tag, Stratify.inFileOrder(d, test)));
    }
}
