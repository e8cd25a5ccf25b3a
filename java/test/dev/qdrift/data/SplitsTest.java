package dev.qdrift.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qdrift.QdriftException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SplitsTest {

    /** Unique texts "c<class>-<i>", classes interleaved in file order. */
    private static Dataset synthetic(int... classSizes) {
        List<Example> examples = new ArrayList<>();
        int[] made = new int[classSizes.length];
        boolean any = true;
        while (any) {
            any = false;
            for (int c = 0; c < classSizes.length; c++) {
                if (made[c] < classSizes[c]) {
                    examples.add(new Example("c" + c + "-" + made[c]++, c));
                    any = true;
                }
            }
        }
        List<String> names = new ArrayList<>();
        for (int c = 0; c < classSizes.length; c++) names.add("class" + c);
        return new Dataset("synthetic", "test", names, examples);
    }

    @Test
    void sameSeedSameSplitOtherSeedOtherSplit() {
        Dataset d = DatasetLoader.load(DatasetLoader.DEMO, Task.SST2);
        Split a = Splits.stratified(d, 0.8, 42);
        Split b = Splits.stratified(d, 0.8, 42);
        Split c = Splits.stratified(d, 0.8, 43);
        assertEquals(a.train().examples(), b.train().examples());
        assertEquals(a.test().examples(), b.test().examples());
        assertNotEquals(a.test().examples(), c.test().examples());
    }

    @Test
    void demoSplitIsExactlyStratified() {
        Split s = Splits.stratified(DatasetLoader.load(DatasetLoader.DEMO, Task.SST2), 0.8, 7);
        assertArrayEquals(new int[] {128, 128}, s.train().classCounts());
        assertArrayEquals(new int[] {32, 32}, s.test().classCounts());
        assertEquals(s.train().labelNames(), List.of("negative", "positive"));
    }

    @Test
    void classProportionsWithinOneExampleOfExpected() {
        int[] sizes = {37, 11, 5, 2, 123};
        Dataset d = synthetic(sizes);
        for (double f : new double[] {0.1, 0.25, 0.5, 0.7, 0.9}) {
            for (long seed = 0; seed < 5; seed++) {
                Split s = Splits.stratified(d, f, seed);
                int[] train = s.train().classCounts();
                int[] test = s.test().classCounts();
                for (int c = 0; c < sizes.length; c++) {
                    assertEquals(sizes[c], train[c] + test[c]);
                    assertTrue(Math.abs(train[c] - sizes[c] * f) <= 1.0,
                            "class " + c + " fraction " + f + ": " + train[c] + " of " + sizes[c]);
                    assertTrue(train[c] >= 1 && test[c] >= 1, "class " + c + " on both sides at fraction " + f);
                }
            }
        }
    }

    @Test
    void disjointCoveringAndInFileOrder() {
        Dataset d = synthetic(50, 30, 20);
        Map<Example, Integer> position = new HashMap<>();
        for (int i = 0; i < d.size(); i++) position.put(d.examples().get(i), i);
        Split s = Splits.stratified(d, 0.6, 123);

        Set<Example> train = new HashSet<>(s.train().examples());
        Set<Example> test = new HashSet<>(s.test().examples());
        assertEquals(s.train().size(), train.size(), "no duplicates in train");
        assertEquals(s.test().size(), test.size(), "no duplicates in test");
        Set<Example> overlap = new HashSet<>(train);
        overlap.retainAll(test);
        assertTrue(overlap.isEmpty(), "disjoint");
        Set<Example> union = new HashSet<>(train);
        union.addAll(test);
        assertEquals(new HashSet<>(d.examples()), union, "covers every example");

        for (Dataset side : List.of(s.train(), s.test())) {
            int last = -1;
            for (Example e : side.examples()) {
                int at = position.get(e);
                assertTrue(at > last, "file order");
                last = at;
            }
        }
    }

    @Test
    void tinyClassesStillGetBothSides() {
        Dataset d = synthetic(2, 2, 1);
        for (double f : new double[] {0.01, 0.5, 0.99}) {
            Split s = Splits.stratified(d, f, 1);
            assertArrayEquals(new int[] {1, 1, 1}, s.train().classCounts(), "fraction " + f);
            assertArrayEquals(new int[] {1, 1, 0}, s.test().classCounts(), "single example goes to train");
        }
    }

    @Test
    void rejectsBadFractionsAndUnsplittableData() {
        Dataset d = synthetic(10, 10);
        for (double f : new double[] {0, 1, -0.2, 1.5, Double.NaN}) {
            QdriftException e = assertThrows(QdriftException.class, () -> Splits.stratified(d, f, 0));
            assertTrue(e.getMessage().contains("fraction"), e.getMessage());
        }
        assertThrows(QdriftException.class, () -> Splits.stratified(synthetic(1, 1), 0.5, 0));
    }

    @Test
    void sampleIsStratifiedSeededAndInFileOrder() {
        Dataset d = synthetic(60, 30, 10);
        Dataset s = d.sample(10, 5);
        assertEquals(10, s.size());
        assertArrayEquals(new int[] {6, 3, 1}, s.classCounts());
        assertEquals(s.examples(), d.sample(10, 5).examples());
        assertNotEquals(s.examples(), d.sample(10, 6).examples());
        // Largest remainder: 7 over 60/30/10 → 4.2, 2.1, 0.7 → 4, 2, 1.
        assertArrayEquals(new int[] {4, 2, 1}, d.sample(7, 0).classCounts());
        List<Example> all = d.examples();
        int last = -1;
        for (Example e : s.examples()) {
            int at = all.indexOf(e);
            assertTrue(at > last, "file order");
            last = at;
        }
        assertEquals(d, d.sample(1000, 0));
    }

    @Test
    void realAgNewsSplit() {
        Path p = Path.of("/work/shared/data/agnews/test.csv");
        assumeTrue(Files.exists(p), "shared data not present: " + p);
        Split s = Splits.stratified(DatasetLoader.load(p.toString(), Task.AGNEWS), 0.8, 2024);
        assertArrayEquals(new int[] {1520, 1520, 1520, 1520}, s.train().classCounts());
        assertArrayEquals(new int[] {380, 380, 380, 380}, s.test().classCounts());
    }
}
