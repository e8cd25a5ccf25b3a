package dev.qdrift.experiment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.DatasetLoader;
import dev.qdrift.data.Task;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link Outliers} end to end on builtin:minilm and real SST-2 sentences: plausible values, padding invariance. */
class OutliersTest {
    static final Dataset SST2 = DatasetLoader.load("java/test-resources/fixtures/sst2-dev-first100.tsv", Task.SST2);
    static Model model;

    @BeforeAll
    static void load() {
        model = ModelLoader.load("builtin:minilm");
    }

    @Test
    void plausibleStatisticsOnSixteenSentences() throws Exception {
        Dataset d = SST2.limit(16);
        Outliers.Result r;
        try (CpuBackend cpu = new CpuBackend()) {
            r = Outliers.run(model, new Encoder(model.weights(), cpu), d, 8);
        }
        assertEquals(6, r.layers());
        assertEquals(16, r.inputs());
        assertEquals(7, r.perLayer().size(), "embeddings + 6 layers");
        assertEquals(-1, r.perLayer().getFirst().layer());
        long realTokens = d.examples().stream().mapToLong(e -> model.tokenizer().encode(e.text(), null).length()).sum();
        assertEquals(realTokens, r.tokens());
        assertEquals(realTokens, r.tokensByCategory().values().stream().mapToLong(Long::longValue).sum());
        assertEquals(16, r.tokensByCategory().get("cls"));
        assertEquals(16, r.tokensByCategory().get("sep"));

        int outlierChannels = 0;
        for (Outliers.LayerResult lr : r.perLayer()) {
            assertEquals(lr.layer() < 0 ? 1 : 6, lr.sites().size(), "sites of layer " + lr.layer());
            for (Outliers.SiteResult s : lr.sites()) {
                String where = s.key();
                assertEquals(realTokens, s.tokens(), where);
                assertEquals(s.site().equals("intermediate") ? 1536 : 384, s.channels(), where);
                assertTrue(Double.isFinite(s.excessKurtosis()) && s.excessKurtosis() > -2, where + " kurtosis " + s.excessKurtosis());
                assertTrue(s.std() > 0 && s.medianAbs() > 0 && s.maxAbs() >= s.medianAbs(), where);
                assertTrue(s.maxOverMedian() >= 1, where);
                // The top 1% (4 of 384) channels hold at least their fair share and at most everything.
                assertTrue(s.energyShareTop1Percent() >= 4.0 / 384 * 0.999 && s.energyShareTop1Percent() <= 1, where);
                double prev = 0;
                for (double share : s.energyShareTopK().values()) {
                    assertTrue(share >= prev && share <= 1, where + " top-k shares grow with k");
                    prev = share;
                }
                assertEquals(Math.round(6 * s.std() * 1e9), Math.round(s.sixSigma() * 1e9), where);
                for (Outliers.OutlierChannel c : s.outliers()) {
                    assertTrue(c.maxAbs() > s.sixSigma(), where);
                    assertTrue(c.tokenHits() >= 1, where + " an outlier channel fires at least once (on its max)");
                    assertTrue(c.tokenRate() > 0 && c.tokenRate() <= 1 && c.inputRate() > 0 && c.inputRate() <= 1, where);
                    assertEquals(c.tokenHits(), c.hitsByCategory().values().stream().mapToLong(Long::longValue).sum(), where);
                    assertTrue(c.layersWithSameChannel().contains(lr.layer()), where);
                    // The embeddings are their own kind of site: layer -1 only.
                    assertTrue(c.layersWithSameChannel().stream().allMatch(x -> (x < 0) == (lr.layer() < 0)), where);
                }
                assertEquals(Math.min(Outliers.DETAIL_LIMIT, s.outlierChannels6Sigma().length), s.outliers().size());
                for (int[][] groups : s.pegGroups().values())
                    assertEquals(s.channels(), Arrays.stream(groups).mapToInt(g -> g.length).sum(), where + " PEG groups cover every channel");
                for (int j = 0; j < s.channels(); j++) assertTrue(s.channelMin()[j] <= s.channelMax()[j]);
                outlierChannels += s.outliers().size();
            }
        }
        assertTrue(outlierChannels > 0, "MiniLM has outlier channels on real sentences");
        assertEquals(7, r.summary().layers().size());
        for (double[] k : r.summary().kurtosisByDepth().values()) {
            assertEquals(6, k.length);
            for (double v : k) assertTrue(Double.isFinite(v));
        }
        // Serializes to JSON (what `qdrift outliers` writes) and reads back.
        ObjectMapper json = new ObjectMapper();
        JsonNode back = json.readTree(json.writeValueAsString(r));
        assertEquals(7, back.get("perLayer").size());
        assertEquals(6, back.get("summary").get("kurtosisByDepth").get("output_norm").size());
    }

    @Test
    void paddingDoesNotChangeTheStatistics() {
        // Five short sentences of different lengths: one at a time (no padding) vs one padded batch.
        Dataset d = new Dataset(SST2.name(), SST2.source(), SST2.labelNames(),
                SST2.examples().stream().filter(e -> e.text().split(" ").length <= 8).limit(5).toList());
        List<Integer> lengths = d.examples().stream().map(e -> model.tokenizer().encode(e.text(), null).length()).toList();
        assertTrue(lengths.stream().distinct().count() > 1, "setup: lengths differ, so the batch carries padding: " + lengths);
        TokenBatch padded = Outliers.batches(d.examples().stream().map(e -> model.tokenizer().encode(e.text(), null)).toList(), 5)
                .getFirst();
        assertTrue(Arrays.stream(padded.mask()).anyMatch(m -> m == 0));

        Outliers.Result one, all;
        try (CpuBackend cpu = new CpuBackend()) {
            Encoder enc = new Encoder(model.weights(), cpu);
            one = Outliers.run(model, enc, d, 1);
            all = Outliers.run(model, enc, d, 5);
        }
        assertEquals(one.tokens(), all.tokens());
        for (int l = 0; l < one.perLayer().size(); l++) {
            List<Outliers.SiteResult> a = one.perLayer().get(l).sites(), b = all.perLayer().get(l).sites();
            for (int s = 0; s < a.size(); s++) {
                Outliers.SiteResult x = a.get(s), y = b.get(s);
                String where = x.key();
                assertEquals(x.tokens(), y.tokens(), where);
                // The encoder's real-token outputs do not depend on padding beyond float rounding.
                assertRel(x.mean(), y.mean(), 1e-4, where + " mean", x.std());
                assertRel(x.std(), y.std(), 1e-5, where + " std", 0);
                assertRel(x.excessKurtosis() + 3, y.excessKurtosis() + 3, 1e-5, where + " kurtosis", 0);
                assertRel(x.maxAbs(), y.maxAbs(), 1e-5, where + " max", 0);
                assertRel(x.energyShareTop1Percent(), y.energyShareTop1Percent(), 1e-5, where + " energy", 0);
                if (x.medianSampleSize() == x.tokens() * x.channels())  // every value kept: exact median
                    assertRel(x.medianAbs(), y.medianAbs(), 1e-5, where + " median", 0);
                assertEquals(Arrays.toString(x.outlierChannels6Sigma()), Arrays.toString(y.outlierChannels6Sigma()), where);
            }
        }
    }

    static void assertRel(double expected, double actual, double rel, String what, double absScale) {
        double scale = Math.max(Math.abs(expected), absScale);
        assertTrue(Math.abs(expected - actual) <= rel * scale, what + ": " + expected + " vs " + actual);
    }
}
