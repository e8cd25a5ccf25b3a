package dev.qdrift.experiment;

import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.metrics.ChannelStats;
import dev.qdrift.metrics.OutlierTokenCategory;
import dev.qdrift.metrics.OutlierTriggers;
import dev.qdrift.model.ActivationObserver;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.Site;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.IntStream;

/**
 * Activation outliers of an FP32 encoder on real data, per layer and activation site: how
 * heavy-tailed the activations are (kurtosis), how concentrated their energy is in a few channels,
 * which channels are outliers, how often and on which tokens they fire, and how PEG would group
 * the channels.
 *
 * <p>Two passes over the data. The first streams every site into a {@link ChannelStats}; its
 * results fix each site's 6σ threshold and outlier channels. The second counts, per outlier
 * channel, the tokens and inputs on which |x| exceeds that threshold ({@link OutlierTriggers}) —
 * a threshold that is only known once all data has been seen, hence the second pass. Padding rows
 * are skipped in both (the batch's attention mask).
 *
 * <p>{@link Site#ATTENTION_INPUT} is not measured: it is the same tensor as the previous layer's
 * {@link Site#OUTPUT_NORM} (the embeddings for layer 0).
 */
public final class Outliers {
    public static final double SIGMAS = 6;
    public static final double MEDIAN_FACTOR = 20;
    public static final double TOP_FRACTION = 0.01;
    public static final int[] TOP_K = {1, 2, 4, 8};
    public static final int[] PEG_GROUPS = {3, 4, 6};
    public static final long SEED = 20261123L;
    /**
     * Outlier channels per site described in full (and followed in the second pass), largest max |x|
     * first. At the GELU output most FFN units pass 6σ somewhere in tens of thousands of tokens;
     * describing all of them would bury the few that matter. Every flagged index is still listed.
     */
    public static final int DETAIL_LIMIT = 32;
    /** Sites measured, in forward order. */
    public static final Set<Site> SITES = EnumSet.complementOf(EnumSet.of(Site.ATTENTION_INPUT));

    public static final Map<String, String> DEFINITIONS = definitions();

    /**
     * @param data              data.source()
     * @param tokens            real (unpadded) tokens measured per site
     * @param tokensByCategory  real tokens per {@link OutlierTokenCategory}, to turn hit counts into rates
     * @param perLayer          embeddings first (layer -1), then each layer
     */
    public record Result(String model, String data, int inputs, long tokens, long truncated, int layers, int hidden,
                         int intermediate, String backend, Map<String, String> definitions,
                         Map<String, Long> tokensByCategory, Summary summary, List<LayerResult> perLayer) {}

    public record LayerResult(int layer, List<SiteResult> sites) {}

    /**
     * One site of one layer.
     *
     * @param excessKurtosis      over all elements of the site (Fisher, population)
     * @param maxChannelKurtosis  largest excess kurtosis of a single channel
     * @param energyShareTopK     "1", "2", "4", "8" → share of the sum of squares in the top-k channels
     * @param sixSigma            the outlier threshold: 6 × σ of all elements
     * @param outlierChannels6Sigma    channels with max |x| > sixSigma, largest first
     * @param outlierChannels20xMedian channels with max |x| > 20 × median |x|, largest first
     * @param outliers            the first {@link #DETAIL_LIMIT} of outlierChannels6Sigma, described
     * @param channelMin          per channel min (with channelMax: the range PEG sorts by)
     * @param pegGroups           "3", "4", "6" → groups of channel indices, widest range first
     * @param pegOutlierGroups    "3", "4", "6" → the groups that hold a 6σ outlier channel
     */
    public record SiteResult(String key, String site, int layer, int channels, long tokens, double mean, double std,
                             double excessKurtosis, double skewness, double maxChannelKurtosis, double maxAbs,
                             double medianAbs, int medianSampleSize, double maxOverMedian, double energyShareTop1Percent,
                             int top1PercentChannels, Map<String, Double> energyShareTopK, double sixSigma,
                             int[] outlierChannels6Sigma, int[] outlierChannels20xMedian, List<OutlierChannel> outliers,
                             float[] channelMin, float[] channelMax, Map<String, int[][]> pegGroups,
                             Map<String, int[]> pegOutlierGroups) {}

    /**
     * A 6σ outlier channel of a site.
     *
     * @param overSigma              max |x| / σ of the site
     * @param overMedian             max |x| / median |x| of the site
     * @param energyShare            its share of the site's sum of squares
     * @param tokenRate              fraction of real tokens with |x| > 6σ in this channel
     * @param inputRate              fraction of inputs in which it fires at least once
     * @param hitsByCategory         tokens it fires on, per token category
     * @param layersWithSameChannel  layers in which the same channel index is a 6σ outlier at the same kind of site
     * @param pegGroup               "3", "4", "6" → the PEG group it falls in
     */
    public record OutlierChannel(int channel, double maxAbs, double min, double max, double mean, double std,
                                 double excessKurtosis, double energyShare, double overSigma, double overMedian,
                                 boolean over20xMedian, long tokenHits, double tokenRate, long inputHits, double inputRate,
                                 Map<String, Long> hitsByCategory, List<Integer> layersWithSameChannel,
                                 Map<String, Integer> pegGroup) {}

    /**
     * @param layers               one row per layer (embeddings first): the printed table
     * @param kurtosisByDepth      site → excess kurtosis per layer 0..L-1
     * @param energyShareByDepth   site → top-1% energy share per layer 0..L-1
     * @param recurringChannels    site → channel → layers where it is a 6σ outlier (only channels in ≥ 2 layers)
     */
    public record Summary(List<LayerRow> layers, Map<String, double[]> kurtosisByDepth,
                          Map<String, double[]> energyShareByDepth, Map<String, Map<Integer, List<Integer>>> recurringChannels) {}

    /**
     * Per layer, over its measured sites.
     *
     * @param outlierChannels              distinct hidden dimensions that are 6σ outliers at some hidden-size site
     * @param outlierChannels20xMedian     distinct hidden dimensions over 20 × median |x| at some hidden-size site
     * @param intermediateOutlierChannels  6σ outlier FFN units at {@link Site#INTERMEDIATE}
     * @param topDims                      up to 3 of those hidden dimensions, largest max |x| / σ first
     */
    public record LayerRow(int layer, double maxKurtosis, String maxKurtosisSite, double maxEnergyShareTop1Percent,
                           String maxEnergySite, double maxOverMedian, String maxOverMedianSite, int outlierChannels,
                           int outlierChannels20xMedian, int intermediateOutlierChannels, List<Integer> topDims) {}

    public static Result run(Model model, Encoder encoder, Dataset data, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be positive");
        BertConfig cfg = model.config();
        Tokenizer tokenizer = model.tokenizer();
        long truncatedBefore = tokenizer.truncatedCount();
        List<TokenBatch> batches = batches(new Embedder(encoder, tokenizer, batchSize).tokenize(data), batchSize);
        long truncated = tokenizer.truncatedCount() - truncatedBefore;
        Backend backend = encoder.backend();

        // Pass 1: moments, extremes, energy, |x| sample per site.
        StatsObserver stats = new StatsObserver(backend);
        Progress p1 = new Progress("outliers 1/2", data.size());
        for (TokenBatch b : batches) {
            stats.batch = b;
            encoder.forward(b, Pooling.CLS, stats);
            p1.advance(b.batch());
        }

        // Pass 2: how often, where and on which tokens each 6σ outlier channel fires.
        TriggerObserver triggers = new TriggerObserver(backend);
        for (int l = -1; l < cfg.layers(); l++) {
            for (Site s : SITES) {
                ChannelStats st = measured(stats, s, l);
                if (st == null) continue;
                int[] outliers = detailed(st.outlierChannels6Sigma());
                if (outliers.length > 0) triggers.follow(s, l, new OutlierTriggers(outliers, st.sigmaThreshold(SIGMAS)));
            }
        }
        long[] categoryTokens = new long[OutlierTokenCategory.values().length];
        Progress p2 = new Progress("outliers 2/2", data.size());
        for (TokenBatch b : batches) {
            countCategories(b, categoryTokens);
            if (!triggers.sites.isEmpty()) {
                triggers.batch = b;
                triggers.tokens = tokenStrings(b);
                encoder.forward(b, Pooling.CLS, triggers);
            }
            p2.advance(b.batch());
        }

        // Same outlier channel index across layers, per kind of site.
        Map<Site, Map<Integer, List<Integer>>> layersByChannel = new EnumMap<>(Site.class);
        for (int l = -1; l < cfg.layers(); l++) {
            for (Site s : SITES) {
                ChannelStats st = measured(stats, s, l);
                if (st == null) continue;
                for (int c : st.outlierChannels6Sigma())
                    layersByChannel.computeIfAbsent(s, k -> new TreeMap<>()).computeIfAbsent(c, k -> new ArrayList<>()).add(l);
            }
        }

        List<LayerResult> perLayer = new ArrayList<>();
        for (int l = -1; l < cfg.layers(); l++) {
            List<SiteResult> sites = new ArrayList<>();
            for (Site s : SITES) {
                ChannelStats st = measured(stats, s, l);
                if (st == null) continue;
                sites.add(siteResult(s, l, st, triggers.sites.get(s.key(l)), layersByChannel.getOrDefault(s, Map.of())));
            }
            perLayer.add(new LayerResult(l, sites));
        }
        Map<String, Long> byCategory = new LinkedHashMap<>();
        for (OutlierTokenCategory c : OutlierTokenCategory.values()) byCategory.put(c.key(), categoryTokens[c.ordinal()]);
        long tokens = Arrays.stream(categoryTokens).sum();
        return new Result(model.id(), data.source(), data.size(), tokens, truncated, cfg.layers(), cfg.hidden(),
                cfg.intermediate(), backend.name(), DEFINITIONS, byCategory, summary(perLayer, cfg, layersByChannel), perLayer);
    }

    /** The statistics of a site of a layer; null where there are none (embeddings belong to layer -1 only). */
    private static ChannelStats measured(StatsObserver stats, Site s, int layer) {
        if ((layer < 0) != (s == Site.EMBEDDINGS)) return null;
        return stats.sites.get(s.key(layer));
    }

    private static int[] detailed(int[] outliers) {
        return Arrays.copyOf(outliers, Math.min(outliers.length, DETAIL_LIMIT));
    }

    // ---- batching and observers ----

    /** Batches in order of token length (little padding), as {@link Embedder} makes them; reused by both passes. */
    static List<TokenBatch> batches(List<Tokenizer.Encoded> enc, int batchSize) {
        int[] order = IntStream.range(0, enc.size()).boxed()
                .sorted(Comparator.comparingInt(i -> enc.get(i).length())).mapToInt(Integer::intValue).toArray();
        List<TokenBatch> out = new ArrayList<>();
        for (int s = 0; s < order.length; s += batchSize) {
            Tokenizer.Encoded[] batch = new Tokenizer.Encoded[Math.min(batchSize, order.length - s)];
            for (int i = 0; i < batch.length; i++) batch[i] = enc.get(order[s + i]);
            out.add(TokenBatch.pad(batch));
        }
        return out;
    }

    private static String[][] tokenStrings(TokenBatch b) {
        String[][] t = new String[b.batch()][];
        for (int i = 0; i < b.batch(); i++) t[i] = b.inputs()[i].tokens();
        return t;
    }

    private static void countCategories(TokenBatch b, long[] counts) {
        for (int i = 0; i < b.batch(); i++)
            for (String tok : b.inputs()[i].tokens()) counts[OutlierTokenCategory.of(tok).ordinal()]++;
    }

    /** Downloads a site's activations into a host array reused across calls of the same size. */
    private abstract static class HostCopy implements ActivationObserver {
        private final Backend backend;
        private final Map<Integer, float[]> scratch = new HashMap<>();
        TokenBatch batch;

        HostCopy(Backend backend) {
            this.backend = backend;
        }

        float[] download(Backend.FloatBuf buf) {
            // download() wants an array of exactly the buffer's size; a forward pass has two sizes
            // (rows x hidden, rows x intermediate), so a few arrays serve all sites of a batch.
            if (scratch.size() > 8) scratch.clear();
            float[] host = scratch.computeIfAbsent(buf.size(), float[]::new);
            backend.download(buf, host);
            return host;
        }
    }

    private static final class StatsObserver extends HostCopy {
        final Map<String, ChannelStats> sites = new LinkedHashMap<>();

        StatsObserver(Backend backend) {
            super(backend);
        }

        @Override
        public boolean wants(Site site) {
            return SITES.contains(site);
        }

        @Override
        public void observe(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {
            String key = site.key(layer);
            // Seeded per site, so every run over the same data draws the same |x| sample.
            ChannelStats st = sites.computeIfAbsent(key, k -> new ChannelStats(cols, SEED ^ k.hashCode()));
            st.add(download(value), rows, batch.mask());
        }
    }

    private static final class TriggerObserver extends HostCopy {
        final Map<String, OutlierTriggers> sites = new HashMap<>();
        private final Set<Site> kinds = EnumSet.noneOf(Site.class);
        String[][] tokens;

        TriggerObserver(Backend backend) {
            super(backend);
        }

        void follow(Site site, int layer, OutlierTriggers t) {
            sites.put(site.key(layer), t);
            kinds.add(site);
        }

        @Override
        public boolean wants(Site site) {
            // Residual sums cost an extra buffer: only ask for the kinds of site that have outliers.
            return kinds.contains(site);
        }

        @Override
        public void observe(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {
            OutlierTriggers t = sites.get(site.key(layer));
            if (t != null) t.add(download(value), cols, batch.batch(), batch.seqLen(), batch.mask(), tokens);
        }
    }

    // ---- results ----

    private static SiteResult siteResult(Site s, int layer, ChannelStats st, OutlierTriggers trig,
                                         Map<Integer, List<Integer>> layersByChannel) {
        int c = st.channels();
        double sigma = st.std(), median = st.medianAbs(), sixSigma = st.sigmaThreshold(SIGMAS);
        double energy = 0;
        for (int j = 0; j < c; j++) energy += st.energy(j);
        Map<String, Double> topK = new LinkedHashMap<>();
        for (int k : TOP_K) if (k <= c) topK.put(Integer.toString(k), st.energyShareTop(k));
        Map<String, int[][]> peg = new LinkedHashMap<>();
        Map<String, int[]> groupOf = new LinkedHashMap<>();
        for (int k : PEG_GROUPS) {
            if (k > c) continue;
            int[][] groups = st.pegGroups(k);
            peg.put(Integer.toString(k), groups);
            int[] g = new int[c];
            for (int i = 0; i < groups.length; i++) for (int ch : groups[i]) g[ch] = i;
            groupOf.put(Integer.toString(k), g);
        }
        int[] six = st.outlierChannels6Sigma(), described = detailed(six);
        Set<Integer> over20 = new TreeSet<>();
        int[] median20 = st.outlierChannelsOverMedian(MEDIAN_FACTOR);
        for (int j : median20) over20.add(j);
        List<OutlierChannel> outliers = new ArrayList<>();
        for (int i = 0; i < described.length; i++) {
            int j = described[i];
            Map<String, Long> hits = new LinkedHashMap<>();
            if (trig != null)
                for (OutlierTokenCategory cat : OutlierTokenCategory.values()) hits.put(cat.key(), trig.categoryHits(i, cat));
            Map<String, Integer> pegGroup = new LinkedHashMap<>();
            for (Map.Entry<String, int[]> e : groupOf.entrySet()) pegGroup.put(e.getKey(), e.getValue()[j]);
            outliers.add(new OutlierChannel(j, st.maxAbs(j), st.min(j), st.max(j), st.mean(j), st.std(j),
                    st.excessKurtosis(j), energy == 0 ? 0 : st.energy(j) / energy, st.maxAbs(j) / sigma,
                    st.maxAbs(j) / median, over20.contains(j), trig == null ? 0 : trig.tokenHits(i),
                    trig == null ? 0 : trig.tokenRate(i), trig == null ? 0 : trig.inputHits(i),
                    trig == null ? 0 : trig.inputRate(i), hits, layersByChannel.getOrDefault(j, List.of()), pegGroup));
        }
        Map<String, int[]> outlierGroups = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : groupOf.entrySet())
            outlierGroups.put(e.getKey(), Arrays.stream(six).map(j -> e.getValue()[j]).distinct().sorted().toArray());
        float[] lo = new float[c], hi = new float[c];
        for (int j = 0; j < c; j++) {
            lo[j] = (float) st.min(j);
            hi[j] = (float) st.max(j);
        }
        ChannelStats.Moments all = st.total();
        return new SiteResult(s.key(layer), s.name().toLowerCase(), layer, c, st.count(), all.mean(), sigma,
                st.excessKurtosis(), all.skewness(), st.maxChannelKurtosis(), st.maxAbs(), median, st.medianSampleSize(),
                st.maxOverMedian(), st.energyShareTopFraction(TOP_FRACTION), st.topCount(TOP_FRACTION), topK, sixSigma, six,
                median20, outliers, lo, hi, peg, outlierGroups);
    }

    private static Summary summary(List<LayerResult> perLayer, BertConfig cfg, Map<Site, Map<Integer, List<Integer>>> layersByChannel) {
        List<LayerRow> rows = new ArrayList<>();
        Map<String, double[]> kurtosis = new LinkedHashMap<>(), energy = new LinkedHashMap<>();
        for (Site s : SITES) {
            if (s == Site.EMBEDDINGS) continue;
            double[] k = new double[cfg.layers()], e = new double[cfg.layers()];
            Arrays.fill(k, Double.NaN);
            Arrays.fill(e, Double.NaN);
            kurtosis.put(s.name().toLowerCase(), k);
            energy.put(s.name().toLowerCase(), e);
        }
        for (LayerResult lr : perLayer) {
            SiteResult maxK = null, maxE = null, maxR = null;
            Set<Integer> hiddenDims = new TreeSet<>(), hiddenDims20x = new TreeSet<>();
            Map<Integer, Double> hiddenOutliers = new HashMap<>();   // described dim -> largest max|x|/σ over sites
            int intermediate = 0;
            for (SiteResult sr : lr.sites()) {
                if (lr.layer() >= 0) {
                    kurtosis.get(sr.site())[lr.layer()] = sr.excessKurtosis();
                    energy.get(sr.site())[lr.layer()] = sr.energyShareTop1Percent();
                }
                if (maxK == null || sr.excessKurtosis() > maxK.excessKurtosis()) maxK = sr;
                if (maxE == null || sr.energyShareTop1Percent() > maxE.energyShareTop1Percent()) maxE = sr;
                if (maxR == null || sr.maxOverMedian() > maxR.maxOverMedian()) maxR = sr;
                if (sr.site().equals("intermediate")) {
                    intermediate = sr.outlierChannels6Sigma().length;
                    continue;
                }
                for (int ch : sr.outlierChannels6Sigma()) hiddenDims.add(ch);
                for (int ch : sr.outlierChannels20xMedian()) hiddenDims20x.add(ch);
                for (OutlierChannel oc : sr.outliers()) hiddenOutliers.merge(oc.channel(), oc.overSigma(), Math::max);
            }
            List<Integer> top = hiddenOutliers.entrySet().stream()
                    .sorted(Map.Entry.<Integer, Double>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
                    .limit(3).map(Map.Entry::getKey).toList();
            if (maxK == null) continue;
            rows.add(new LayerRow(lr.layer(), maxK.excessKurtosis(), maxK.site(), maxE.energyShareTop1Percent(), maxE.site(),
                    maxR.maxOverMedian(), maxR.site(), hiddenDims.size(), hiddenDims20x.size(), intermediate, top));
        }
        Map<String, Map<Integer, List<Integer>>> recurring = new LinkedHashMap<>();
        for (Map.Entry<Site, Map<Integer, List<Integer>>> e : layersByChannel.entrySet()) {
            Map<Integer, List<Integer>> many = new TreeMap<>();
            e.getValue().forEach((ch, layers) -> {
                if (layers.size() >= 2) many.put(ch, layers);
            });
            if (!many.isEmpty()) recurring.put(e.getKey().name().toLowerCase(), many);
        }
        return new Summary(rows, kurtosis, energy, recurring);
    }

    private static Map<String, String> definitions() {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("kurtosis", "Fisher excess kurtosis m4/m2^2 - 3 with population central moments (0 for a normal distribution; "
                + "scipy.stats.kurtosis defaults), over all elements of a site (real tokens x channels)");
        d.put("energy_share", "share of the site's sum of squares sum(x^2) held by the channels with the largest sum of squares; "
                + "top 1% = ceil(0.01 * channels) channels");
        d.put("outlier_channel", "a channel whose max |x| exceeds 6 sigma, sigma = population std of all elements of the site; "
                + "the 20x-median criterion (max |x| > 20 * median |x|) is reported beside it");
        d.put("median_abs", "median of |x| estimated from a seeded uniform sample of " + ChannelStats.DEFAULT_RESERVOIR
                + " |x| values per site (exact when the site has fewer elements)");
        d.put("fires", "a channel fires on a token when |x| > 6 sigma of its site; token_rate = firing tokens / real tokens, "
                + "input_rate = inputs with at least one firing token / inputs");
        d.put("outliers", "per site, the " + DETAIL_LIMIT + " outlier channels with the largest max |x| are described (and followed "
                + "for fires); outlierChannels6Sigma lists every flagged channel");
        d.put("token_categories", "cls, sep, punctuation (no letter or digit), stopword (the, a, of, and, to, in, is, it, that), other");
        d.put("peg_groups", "channels sorted by range (max - min) descending, split into K contiguous groups of equal size");
        d.put("sites", "attention_input is not measured: it is the previous layer's output_norm (the embeddings for layer 0); "
                + "padding tokens are excluded everywhere");
        return java.util.Collections.unmodifiableMap(d);
    }

    private Outliers() {}
}
