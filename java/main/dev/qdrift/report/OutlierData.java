package dev.qdrift.report;

import static dev.qdrift.report.ReportData.doubleArrays;
import static dev.qdrift.report.ReportData.doubles;
import static dev.qdrift.report.ReportData.fields;
import static dev.qdrift.report.ReportData.ints;
import static dev.qdrift.report.ReportData.num;
import static dev.qdrift.report.ReportData.strings;
import static dev.qdrift.report.ReportData.text;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the report shows of an outliers.json ({@code qdrift outliers}, written from
 * {@code experiment.Outliers.Result} with the data selection added). Read from the JSON tree, not
 * bound to the record, because that record is young and may still grow or rename fields: whatever
 * is missing here leaves the matching table or chart out, and nothing fails.
 *
 * @param kurtosisByDepth  site → excess kurtosis per layer 0..L-1 (NaN where not measured); empty when absent
 * @param energyByDepth    site → share of the sum of squares in the top 1% of channels per layer; empty when absent
 * @param layerRows        the per-layer summary table; empty when absent
 * @param ranges           per-channel ranges and PEG groups of the site with the strongest outliers, or null
 * @param topOutliers      the 6σ outlier channels with the largest max |x| / σ over all sites, at most {@link #TOP_OUTLIERS}
 */
public record OutlierData(String model, String data, Map<String, String> selection, int inputs, long tokens, int layers,
                          int hidden, String backend, Map<String, String> definitions, Map<String, Long> tokensByCategory,
                          Map<String, double[]> kurtosisByDepth, Map<String, double[]> energyByDepth, List<LayerRow> layerRows,
                          ChannelRanges ranges, List<OutlierChannel> topOutliers) {

    static final int TOP_OUTLIERS = 12;

    /** One row of the per-layer summary (layer -1 is the embeddings). */
    public record LayerRow(int layer, double maxKurtosis, String maxKurtosisSite, double maxEnergyShareTop1Percent,
                           String maxEnergySite, double maxOverMedian, String maxOverMedianSite, int outlierChannels,
                           int intermediateOutlierChannels, List<Integer> topDims) {}

    /**
     * The per-channel min/max of one site, which PEG sorts by range and cuts into groups.
     *
     * @param pegGroups       K → groups of channel indices, widest range first
     * @param outlierChannels the site's 6σ outlier channels (may be empty)
     */
    public record ChannelRanges(String key, String site, int layer, double maxOverMedian, double[] min, double[] max,
                                Map<String, int[][]> pegGroups, int[] outlierChannels) {}

    /** A 6σ outlier channel of one site, with the token kinds it fires on. */
    public record OutlierChannel(String key, int channel, double maxAbs, double overSigma, double overMedian, double tokenRate,
                                 double inputRate, Map<String, Long> hitsByCategory, List<Integer> layersWithSameChannel) {}

    static OutlierData from(JsonNode r) {
        List<JsonNode> sites = new ArrayList<>();
        for (JsonNode layer : r.path("perLayer")) for (JsonNode s : layer.path("sites")) sites.add(s);
        JsonNode summary = r.path("summary");
        int hidden = r.path("hidden").asInt();
        int layers = r.path("layers").asInt();

        Map<String, double[]> kurtosis = doubleArrays(summary.path("kurtosisByDepth"));
        Map<String, double[]> energy = doubleArrays(summary.path("energyByDepth").isMissingNode()
                ? summary.path("energyShareByDepth") : summary.path("energyByDepth"));
        // Older or trimmed files may have only the per-site results: rebuild the depth series from them.
        if (kurtosis.isEmpty()) kurtosis = byDepth(sites, layers, "excessKurtosis");
        if (energy.isEmpty()) energy = byDepth(sites, layers, "energyShareTop1Percent");

        List<LayerRow> rows = new ArrayList<>();
        for (JsonNode l : summary.path("layers")) {
            List<Integer> top = new ArrayList<>();
            for (JsonNode d : l.path("topDims")) top.add(d.asInt());
            rows.add(new LayerRow(l.path("layer").asInt(), num(l.path("maxKurtosis")), text(l, "maxKurtosisSite"),
                    num(l.path("maxEnergyShareTop1Percent")), text(l, "maxEnergySite"), num(l.path("maxOverMedian")),
                    text(l, "maxOverMedianSite"), l.path("outlierChannels").asInt(), l.path("intermediateOutlierChannels").asInt(), top));
        }

        Map<String, Long> categories = fields(r.path("tokensByCategory"), JsonNode::asLong);
        return new OutlierData(text(r, "model"), text(r, "data"), strings(r.path("selection")), r.path("inputs").asInt(),
                r.path("tokens").asLong(), layers, hidden, text(r, "backend"), strings(r.path("definitions")), categories,
                kurtosis, energy, rows, ranges(sites, hidden), topOutliers(sites));
    }

    private static Map<String, double[]> byDepth(List<JsonNode> sites, int layers, String field) {
        Map<String, double[]> out = new LinkedHashMap<>();
        if (layers <= 0) return out;
        for (JsonNode s : sites) {
            int layer = s.path("layer").asInt(-1);
            String site = text(s, "site");
            if (layer < 0 || layer >= layers || site == null || !s.has(field)) continue;
            out.computeIfAbsent(site, k -> {
                double[] a = new double[layers];
                java.util.Arrays.fill(a, Double.NaN);
                return a;
            })[layer] = num(s.path(field));
        }
        return out;
    }

    /**
     * The site to draw channel ranges for: among hidden-size sites (PEG groups the hidden dimension;
     * the FFN intermediate is 4× wider and not what PEG targets) that carry ranges, the one with the
     * largest max |x| / median |x| — where the outliers are strongest and the groups matter most.
     */
    private static ChannelRanges ranges(List<JsonNode> sites, int hidden) {
        JsonNode best = null;
        for (JsonNode s : sites) {
            if (!s.path("channelMin").isArray() || !s.path("channelMax").isArray()) continue;
            if (hidden > 0 && s.path("channels").asInt(hidden) != hidden) continue;
            if (best == null || num(s.path("maxOverMedian")) > num(best.path("maxOverMedian"))) best = s;
        }
        if (best == null) return null;
        double[] min = doubles(best.path("channelMin")), max = doubles(best.path("channelMax"));
        if (min.length != max.length || min.length == 0) return null;
        Map<String, int[][]> groups = fields(best.path("pegGroups"), g -> {
            int[][] out = new int[g.size()][];
            for (int i = 0; i < out.length; i++) out[i] = ints(g.get(i));
            return out;
        });
        groups.values().removeIf(g -> g.length == 0 || java.util.Arrays.stream(g).anyMatch(java.util.Objects::isNull));
        int[] outl = ints(best.path("outlierChannels6Sigma"));
        return new ChannelRanges(text(best, "key"), text(best, "site"), best.path("layer").asInt(), num(best.path("maxOverMedian")),
                min, max, groups, outl == null ? new int[0] : outl);
    }

    private static List<OutlierChannel> topOutliers(List<JsonNode> sites) {
        List<OutlierChannel> all = new ArrayList<>();
        for (JsonNode s : sites) {
            for (JsonNode c : s.path("outliers")) {
                List<Integer> same = new ArrayList<>();
                for (JsonNode l : c.path("layersWithSameChannel")) same.add(l.asInt());
                all.add(new OutlierChannel(text(s, "key"), c.path("channel").asInt(), num(c.path("maxAbs")), num(c.path("overSigma")),
                        num(c.path("overMedian")), num(c.path("tokenRate")), num(c.path("inputRate")),
                        fields(c.path("hitsByCategory"), JsonNode::asLong), same));
            }
        }
        all.removeIf(c -> Double.isNaN(c.overSigma()));
        all.sort(Comparator.comparingDouble(OutlierChannel::overSigma).reversed());
        return all.size() > TOP_OUTLIERS ? List.copyOf(all.subList(0, TOP_OUTLIERS)) : all;
    }
}
