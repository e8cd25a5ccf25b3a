package dev.qdrift.experiment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.Example;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The aggregate's arithmetic on hand-made JSONL lines, the JSONL file's repair, and the example order. */
class DriftAggregateTest {
    private static final List<String> LABELS = List.of("neg", "pos");

    /** A line with the given metrics; every drift metric but spearman set to spearman's value. */
    private static DriftRecord line(int example, String scheme, int gold, int fp32Pred, int pred, int words, Double spearman, Double delta) {
        double[] scores = new double[words];
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < words; i++) {
            scores[i] = i;
            texts.add("w" + i);
        }
        return new DriftRecord(example, example, scheme, "text " + example, null, gold, LABELS.get(gold), words + 2, words, false, "logit",
                fp32Pred, LABELS.get(fp32Pred), fp32Pred, pred, fp32Pred == pred, new double[] {0.5, -0.5}, 0.5, 0.25, texts, scores,
                spearman, spearman, 1.0, 2 / 3.0, 0.5, 0.75, 0.9, 1.0, 0.0, delta, 0.001, null, null, 50, null, 0.1);
    }

    private static final DriftAggregate.Header HEADER = new DriftAggregate.Header("m", "h", "d", "ig", DriftRun.TARGET, "test", Map.of(),
            Map.of("fp32", "FP32", "w8a8", "w8a8"), Map.of());

    /**
     * w8a8 on 5 examples:
     * <pre>
     * ex gold fp32 w8a8 words spearman delta
     * 0  0    0    0    5     0.2      -0.1
     * 1  1    1    1    15    0.4       0.3
     * 2  1    0    1    25    0.6      -0.2   (FP32 wrong, flipped)
     * 3  0    0    0    8     null      null  (one-word-like: undefined)
     * 4  1    1    0    12    1.0       0.0   (flipped)
     * </pre>
     */
    private static List<DriftRecord> handMade() {
        List<DriftRecord> rs = new ArrayList<>();
        int[][] rows = {{0, 0, 0, 5}, {1, 1, 1, 15}, {1, 0, 1, 25}, {0, 0, 0, 8}, {1, 1, 0, 12}};
        Double[] rho = {0.2, 0.4, 0.6, null, 1.0}, delta = {-0.1, 0.3, -0.2, null, 0.0};
        for (int i = 0; i < rows.length; i++) {
            rs.add(line(i, "fp32", rows[i][0], rows[i][1], rows[i][1], rows[i][3], 1.0, 0.001));
            rs.add(line(i, "w8a8", rows[i][0], rows[i][1], rows[i][2], rows[i][3], rho[i], delta[i]));
        }
        return rs;
    }

    @Test
    void aggregateOfHandMadeLines(@TempDir Path tmp) throws IOException {
        // Through the file: null metrics must survive the round trip.
        Path file = tmp.resolve("examples.jsonl");
        try (DriftLog log = DriftLog.open(file)) {
            for (DriftRecord r : handMade()) log.append(r);
        }
        List<DriftRecord> read = DriftLog.readAll(file);
        assertEquals(10, read.size());
        assertNull(read.get(7).spearman());

        DriftAggregate.Result a = DriftAggregate.aggregate(read, List.of("fp32", "w8a8"), LABELS, HEADER);
        assertEquals(5, a.n());
        DriftAggregate.SchemeResult q = a.schemes().get(1);
        assertEquals("w8a8", q.scheme());
        assertEquals(5, q.n());
        assertArrayEquals(new double[] {0.2, 0.4, 0.6, 1.0}, q.spearman(), 0);
        DriftAggregate.Group all = q.all();
        DriftAggregate.Stat rho = all.metrics().get("spearman");
        assertEquals(4, rho.n());
        assertEquals(0.55, rho.mean(), 1e-12);
        assertTrue(rho.ciLow() >= 0.2 && rho.ciLow() < 0.55 && rho.ciHigh() > 0.55 && rho.ciHigh() <= 1.0, rho.toString());
        assertEquals(0.55, all.metrics().get("kendall").mean(), 1e-12);
        assertEquals(2 / 3.0, all.metrics().get("top3").mean(), 1e-12);
        assertEquals(0.6, all.agreement(), 1e-12);
        assertEquals(2, all.flips());
        assertEquals(0.8, all.accuracy(), 1e-12);   // w8a8 right on all but example 4
        assertEquals(4, all.absDelta().n());
        assertEquals((0.1 + 0.3 + 0.2 + 0.0) / 4, all.absDelta().mean(), 1e-12);
        assertNull(all.logitShiftCorrelation());

        // By FP32 correctness: example 2 is FP32's only miss.
        DriftAggregate.Group wrong = q.byCorrectness().get("incorrect"), right = q.byCorrectness().get("correct");
        assertEquals(1, wrong.n());
        assertEquals(0.6, wrong.metrics().get("spearman").mean(), 1e-12);
        assertEquals(0.6, wrong.metrics().get("spearman").ciLow(), 1e-12);   // one value: the CI is that value
        assertEquals(4, right.n());
        assertEquals((0.2 + 0.4 + 1.0) / 3, right.metrics().get("spearman").mean(), 1e-12);
        assertEquals(1, right.flips());
        // By gold class.
        assertEquals(2, q.byClass().get("neg").n());
        assertEquals(0.2, q.byClass().get("neg").metrics().get("spearman").mean(), 1e-12);
        assertEquals(1, q.byClass().get("neg").metrics().get("spearman").n());
        assertEquals(3, q.byClass().get("pos").n());
        assertEquals(2, q.byClass().get("pos").flips());   // examples 2 (FP32 0, w8a8 1) and 4 (1, 0)
        // By length: 5, 8 words | 15, 12 | 25.
        assertEquals(2, q.byLength().get("<=10").n());
        assertEquals(2, q.byLength().get("11-20").n());
        assertEquals(1, q.byLength().get(">20").n());
        assertEquals(0.7, q.byLength().get("11-20").metrics().get("spearman").mean(), 1e-12);
        assertEquals(0.1, q.byLength().get("<=10").absDelta().mean(), 1e-12);

        // FP32 against itself.
        DriftAggregate.SchemeResult f = a.schemes().get(0);
        assertEquals(1.0, f.agreement());
        assertEquals(0, f.flips());
        // The report's fields: logit shift pairs per example, heat-map examples with one attribution per word.
        assertArrayEquals(new double[] {0.25, 0.25, 0.25, 0.25, 0.25}, q.logitShift().fp32(), 0);
        assertArrayEquals(new double[] {0.5, 0.5, 0.5, 0.5, 0.5}, q.logitShift().quantized(), 0);
        assertEquals(5, a.examples().size());
        assertEquals(a.examples().get(2).tokens().size(), a.examples().get(2).attributions().get("w8a8").length);
        assertEquals("pos", a.examples().get(2).predicted().get("w8a8"));
    }

    @Test
    void bootstrapMeanCi() {
        assertArrayEquals(new double[] {0.3, 0.3}, DriftAggregate.bootstrapMeanCi(new double[] {0.3, 0.3, 0.3}, 1000, 0.95, 1), 1e-15);
        // Many values: the percentile interval is close to mean ± 1.96 sd / sqrt(n).
        Random r = new Random(3);
        double[] v = new double[400];
        for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian();
        double mean = DriftAggregate.mean(v), sd = 0;
        for (double x : v) sd += (x - mean) * (x - mean);
        sd = Math.sqrt(sd / (v.length - 1));
        double[] ci = DriftAggregate.bootstrapMeanCi(v, 2000, 0.95, 7);
        double half = 1.96 * sd / Math.sqrt(v.length);
        assertEquals(mean - half, ci[0], 0.15 * half);
        assertEquals(mean + half, ci[1], 0.15 * half);
        // Seeded: the same inputs and seed give the same interval.
        assertArrayEquals(ci, DriftAggregate.bootstrapMeanCi(v, 2000, 0.95, 7), 0);
    }

    @Test
    void partialLastLineIsCutOffAndABrokenMiddleLineRefused(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("examples.jsonl");
        try (DriftLog log = DriftLog.open(file)) {
            log.append(handMade().get(0));
            log.append(handMade().get(1));
        }
        long whole = Files.size(file);
        String partial = "{\"example\":2,\"sch";
        Files.writeString(file, partial, StandardOpenOption.APPEND);
        DriftLog.Contents c = DriftLog.read(file, false);
        assertEquals(2, c.records().size());
        assertEquals(partial.length(), c.droppedBytes());
        assertEquals(whole + partial.length(), Files.size(file), "read without repair leaves the file alone");
        try (DriftLog log = DriftLog.open(file)) {
            assertEquals(2, log.contents().records().size());
            assertEquals(whole, Files.size(file), "open cuts the partial line off");
            log.append(handMade().get(2));
        }
        assertEquals(3, DriftLog.readAll(file).size());

        List<String> lines = Files.readAllLines(file);
        lines.set(1, lines.get(1).substring(0, 20));
        Files.write(file, lines, StandardCharsets.UTF_8);
        QdriftException e = assertThrows(QdriftException.class, () -> DriftLog.read(file, true));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
    }

    @Test
    void orderIsStratifiedAndNested() {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < 300; i++) ex.add(new Example("t" + i, i < 200 ? 0 : 1));   // sorted by label, 2:1
        Dataset d = new Dataset("d", "d", LABELS, ex);
        int[] order = DriftRun.order(d, 13);
        assertEquals(300, new HashSet<>(java.util.Arrays.stream(order).boxed().toList()).size());
        for (int n : new int[] {3, 6, 30, 99}) {
            int ones = 0;
            for (int k = 0; k < n; k++) if (order[k] >= 200) ones++;
            assertEquals(n / 3.0, ones, 1.0, "prefix " + n);
        }
        assertArrayEquals(order, DriftRun.order(d, 13));
        int[] other = DriftRun.order(d, 14);
        List<Integer> a = new ArrayList<>(), b = new ArrayList<>();
        for (int k = 0; k < 10; k++) {
            a.add(order[k]);
            b.add(other[k]);
        }
        assertTrue(!a.equals(b), "another seed, another order");
    }
}
