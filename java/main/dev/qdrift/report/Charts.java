package dev.qdrift.report;

import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.report.ReportModel.Figure;
import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.knowm.xchart.BoxChart;
import org.knowm.xchart.BoxChartBuilder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The report's charts, drawn by XChart and exported as SVG to be inlined in the HTML (vector: sharp at
 * any zoom, and no image files beside the report). Each method returns a {@link Figure} holding the
 * SVG and the series it was drawn from (for report.json), or null when the data cannot make the chart.
 */
final class Charts {
    static final int WIDTH = 860, HEIGHT = 400;

    static {
        // XChart draws through Java2D; on a server there is no display, and none is needed.
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private Charts() {}

    // ---- quantization ----

    /**
     * Accuracy per scheme with its 95% bootstrap CI. XChart's error bars are symmetric around the
     * series value and a bootstrap CI need not be, so the CI is a second, invisible series centred on
     * the CI's midpoint whose error bar spans exactly [ciLow, ciHigh]. The y axis starts near the
     * lowest CI end (caption says where): from zero, the differences that matter would be invisible.
     */
    static Figure accuracy(String id, String title, QuantizeEval.Result r) {
        if (r.rows() == null || r.rows().isEmpty()) return null;
        List<String> schemes = new ArrayList<>();
        List<Double> acc = new ArrayList<>(), mid = new ArrayList<>(), half = new ArrayList<>(), lo = new ArrayList<>(), hi = new ArrayList<>();
        double min = 1, max = 0;
        for (QuantizeEval.Row row : r.rows()) {
            schemes.add(row.scheme());
            double l = Double.isFinite(row.ciLow()) ? row.ciLow() : row.accuracy(), h = Double.isFinite(row.ciHigh()) ? row.ciHigh() : row.accuracy();
            acc.add(row.accuracy());
            lo.add(l);
            hi.add(h);
            mid.add((l + h) / 2);
            half.add((h - l) / 2);
            min = Math.min(min, Math.min(l, row.accuracy()));
            max = Math.max(max, Math.max(h, row.accuracy()));
        }
        double yMin = Math.max(0, Math.floor((min - 0.02) * 20) / 20), yMax = Math.min(1, Math.ceil((max + 0.01) * 20) / 20);
        if (yMax <= yMin) yMax = Math.min(1, yMin + 0.05);
        CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("scheme").yAxisTitle("accuracy").build();
        style(c.getStyler());
        c.getStyler().setOverlapped(true);
        c.getStyler().setLegendVisible(false);
        c.getStyler().setYAxisMin(yMin);
        c.getStyler().setYAxisMax(yMax);
        c.getStyler().setErrorBarsColor(Color.BLACK);
        c.getStyler().setYAxisDecimalPattern("0.00");
        if (schemes.size() > 6) c.getStyler().setXAxisLabelRotation(30);
        c.addSeries("accuracy", schemes, acc).setFillColor(new Color(0x4C78A8));
        CategorySeries ci = c.addSeries("95% CI", schemes, mid, half);
        ci.setChartCategorySeriesRenderStyle(CategorySeries.CategorySeriesRenderStyle.Scatter);
        ci.setMarker(SeriesMarkers.NONE);
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("schemes", schemes);
        data.put("accuracy", acc);
        data.put("ciLow", lo);
        data.put("ciHigh", hi);
        data.put("yAxisMin", yMin);
        return figure(id, title, String.format("Bars: accuracy on the same %s examples; whiskers: 95%% bootstrap CI. "
                + "The y axis starts at %.2f.", r.rows().getFirst().n(), yMin), c, data);
    }

    // ---- outliers ----

    /** One line per activation site over the layers (x = layer index); NaN points are gaps. */
    static Figure byDepth(String id, String title, String yTitle, String caption, Map<String, double[]> series) {
        Map<String, double[]> drawn = new LinkedHashMap<>();
        series.forEach((site, v) -> {
            if (v != null && Arrays.stream(v).anyMatch(Double::isFinite)) drawn.put(site, v);
        });
        if (drawn.isEmpty()) return null;
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("layer").yAxisTitle(yTitle).build();
        style(c.getStyler());
        c.getStyler().setXAxisDecimalPattern("0");
        int layers = 0;
        for (Map.Entry<String, double[]> e : drawn.entrySet()) {
            double[] y = e.getValue();
            layers = Math.max(layers, y.length);
            double[] x = new double[y.length];
            for (int i = 0; i < x.length; i++) x[i] = i;
            XYSeries s = c.addSeries(e.getKey(), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
        }
        if (layers > 1) c.getStyler().setXAxisTickMarkSpacingHint(Math.max(30, (WIDTH - 120) / layers));
        return figure(id, title, caption, c, new LinkedHashMap<>(drawn));
    }

    /**
     * Every channel's [min, max] at one site as a vertical bar, channels in PEG's order (widest range
     * first) and coloured by the PEG group they fall in, so the groups read as coloured blocks.
     * The bars are one line series per group broken by NaN points: XChart has no range-bar chart,
     * and error bars would add a cap to each of hundreds of channels.
     *
     * <p>The y axis is cut where a few outlier channels would flatten everything else (one channel at
     * 200 and the rest within ±3 is typical): the cut is 1.2 × the 99th percentile of the channels'
     * largest |x|, the channels beyond it are counted in the caption, and their diamonds sit on the edge.
     */
    static Figure channelRanges(String id, OutlierData.ChannelRanges r, String k) {
        int n = r.min().length;
        int[][] groups = r.pegGroups().get(k);
        if (groups == null) groups = new int[][] {rangeOrder(r)};   // no PEG groups: one group, range order
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT)
                .title("Per-channel ranges at " + r.key() + (r.pegGroups().containsKey(k) ? ", PEG K = " + k : ""))
                .xAxisTitle(n + " channels, sorted by range (max - min), widest first").yAxisTitle("activation").build();
        style(c.getStyler());
        // A channel's rank in PEG's order is no coordinate worth reading, and XChart labels every
        // 15th of hundreds of integer positions into an unreadable row: no x tick labels.
        c.getStyler().setXAxisTicksVisible(false);

        double[] extreme = new double[n];
        double lo = 0, hi = 0;
        int maxAt = 0;
        for (int j = 0; j < n; j++) {
            extreme[j] = Math.max(Math.abs(r.min()[j]), Math.abs(r.max()[j]));
            lo = Math.min(lo, r.min()[j]);
            hi = Math.max(hi, r.max()[j]);
            if (extreme[j] > extreme[maxAt]) maxAt = j;
        }
        double[] sorted = extreme.clone();
        Arrays.sort(sorted);
        double cut = 1.2 * sorted[(int) Math.floor(0.99 * (n - 1))];
        boolean clip = cut > 0 && sorted[n - 1] > 1.5 * cut;
        int beyond = 0;
        if (clip) {
            for (double e : extreme) if (e > cut) beyond++;
            lo = Math.max(lo, -cut);
            hi = Math.min(hi, cut);
            double pad = 0.05 * (hi - lo);
            c.getStyler().setYAxisMin(lo - pad);
            c.getStyler().setYAxisMax(hi + pad);
        }

        Set<Integer> outliers = new HashSet<>();
        for (int ch : r.outlierChannels()) outliers.add(ch);
        List<Double> ox = new ArrayList<>(), oy = new ArrayList<>();
        List<Integer> order = new ArrayList<>();
        int pos = 0;
        for (int g = 0; g < groups.length; g++) {
            double[] x = new double[3 * groups[g].length], y = new double[3 * groups[g].length];
            Arrays.fill(y, Double.NaN);
            for (int i = 0; i < groups[g].length; i++, pos++) {
                int ch = groups[g][i];
                x[3 * i] = x[3 * i + 1] = x[3 * i + 2] = pos;
                if (ch < 0 || ch >= n) continue;
                order.add(ch);
                y[3 * i] = r.min()[ch];
                y[3 * i + 1] = r.max()[ch];
                if (outliers.contains(ch)) {
                    double v = Math.abs(r.max()[ch]) >= Math.abs(r.min()[ch]) ? r.max()[ch] : r.min()[ch];
                    ox.add((double) pos);
                    oy.add(clip ? Math.max(lo, Math.min(hi, v)) : v);
                }
            }
            String name = groups.length == 1 ? "channels" : "group " + (g + 1) + " (" + groups[g].length + " channels)";
            XYSeries s = c.addSeries(name, x, y);
            s.setMarker(SeriesMarkers.NONE);
            s.setLineWidth(1.5f);
        }
        if (!ox.isEmpty()) {
            XYSeries s = c.addSeries("6σ outlier channel", ox, oy);
            s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            s.setMarker(SeriesMarkers.DIAMOND);
            s.setMarkerColor(Color.BLACK);
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("site", r.key());
        data.put("pegK", groups.length == 1 ? null : k);
        data.put("channelOrder", order);
        data.put("min", r.min());
        data.put("max", r.max());
        data.put("groups", groups);
        data.put("outlierChannels", r.outlierChannels());
        data.put("yAxisCut", clip ? cut : null);
        String caption = String.format(Locale.ROOT, "Each bar is one of the %d channels of %s (max |x| / median |x| = %.0f, the largest "
                + "of the hidden-size sites), from its minimum to its maximum over all real tokens. ", n, r.key(), r.maxOverMedian())
                + (groups.length > 1 ? "Colours: the " + groups.length + " groups PEG forms after its range-based permutation; each "
                + "group gets its own quantization range, so the widest channels no longer set the scale for the rest. " : "")
                + (clip ? String.format(Locale.ROOT, "The y axis is cut at ±%.1f so the other channels stay visible: %d channel(s) reach "
                + "beyond it (largest: channel %d, |x| = %.1f). ", cut, beyond, maxAt, extreme[maxAt]) : "")
                + (ox.isEmpty() ? "" : "Diamonds: 6σ outlier channels, at their extreme value" + (clip ? " (or on the edge)." : "."));
        return figure(id, c.getTitle(), caption, c, data);
    }

    private static int[] rangeOrder(OutlierData.ChannelRanges r) {
        Integer[] idx = new Integer[r.min().length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Double.compare(r.max()[b] - r.min()[b], r.max()[a] - r.min()[a]));
        return Arrays.stream(idx).mapToInt(Integer::intValue).toArray();
    }

    // ---- drift ----

    /** Spearman rank correlation of attributions, FP32 vs each scheme, as box plots (one per scheme). */
    static Figure spearman(String id, DriftData d) {
        // The FP32 reference against itself (ρ = 1 everywhere) would only squeeze the boxes that matter.
        List<DriftData.SchemeDrift> with = d.schemes().stream().filter(s -> !s.isReference() && s.spearman().length > 0).toList();
        if (with.isEmpty()) return null;
        BoxChart c = new BoxChartBuilder().width(WIDTH).height(HEIGHT).title("Attribution rank correlation with FP32")
                .xAxisTitle("scheme").yAxisTitle("Spearman ρ per example").build();
        style(c.getStyler());
        c.getStyler().setLegendVisible(false);
        Map<String, Object> data = new LinkedHashMap<>();
        for (DriftData.SchemeDrift s : with) {
            c.addSeries(s.scheme(), s.spearman());
            data.put(s.scheme(), s.spearman());
        }
        return figure(id, c.getTitle(), "Per example, the Spearman correlation between the token attributions of the FP32 model and "
                + "of the quantized one (1: same ranking of tokens). Boxes: quartiles; line: median; whiskers: 1.5 IQR.", c, data);
    }

    /** @param points scheme → {agreement, mean Spearman} */
    static Figure agreementVsSimilarity(String id, Map<String, double[]> points) {
        if (points.isEmpty()) return null;
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("Prediction agreement vs attribution similarity")
                .xAxisTitle("agreement with FP32 predictions").yAxisTitle("mean Spearman ρ of attributions").build();
        style(c.getStyler());
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        c.getStyler().setMarkerSize(11);
        double x0 = 1, x1 = 0, y0 = 1, y1 = 0;
        for (double[] p : points.values()) {
            x0 = Math.min(x0, p[0]);
            x1 = Math.max(x1, p[0]);
            y0 = Math.min(y0, p[1]);
            y1 = Math.max(y1, p[1]);
        }
        // Pad the axes so the points do not sit on the plot's edges (XChart fits the range to the data).
        c.getStyler().setXAxisMin(Math.max(0, x0 - 0.05));
        c.getStyler().setXAxisMax(Math.min(1, x1 + 0.05));
        c.getStyler().setYAxisMin(Math.max(-1, y0 - 0.05));
        c.getStyler().setYAxisMax(Math.min(1, y1 + 0.05));
        points.forEach((scheme, p) -> c.addSeries(scheme, new double[] {p[0]}, new double[] {p[1]}));
        return figure(id, c.getTitle(), "One point per scheme. A scheme can keep almost every prediction and still change which "
                + "tokens the model relies on: points low on the right are what accuracy alone does not show.", c, new LinkedHashMap<>(points));
    }

    static Figure logitShift(String id, DriftData d) {
        List<DriftData.SchemeDrift> with = d.schemes().stream()
                .filter(s -> !s.isReference() && s.fp32Logits() != null && s.fp32Logits().length > 0).toList();
        if (with.isEmpty()) return null;
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("Logit shift: FP32 vs quantized")
                .xAxisTitle("FP32 logit of the FP32-predicted class").yAxisTitle("quantized logit, same class").build();
        style(c.getStyler());
        c.getStyler().setMarkerSize(5);
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        Map<String, Object> data = new LinkedHashMap<>();
        for (DriftData.SchemeDrift s : with) {
            XYSeries series = c.addSeries(s.scheme(), s.fp32Logits(), s.quantLogits());
            series.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            for (double v : s.fp32Logits()) if (Double.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            for (double v : s.quantLogits()) if (Double.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            data.put(s.scheme(), Map.of("fp32", s.fp32Logits(), "quantized", s.quantLogits()));
        }
        if (lo < hi) {
            XYSeries diag = c.addSeries("y = x", new double[] {lo, hi}, new double[] {lo, hi});
            diag.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            diag.setMarker(SeriesMarkers.NONE);
            diag.setLineColor(Color.GRAY);
        }
        return figure(id, c.getTitle(), "One point per example and scheme. On the diagonal, quantization left the logit unchanged.", c, data);
    }

    // ---- latency ----

    /**
     * Throughput per input shape. One bench: our forward as a user runs it, compute only and as a CUDA
     * graph (where measured). Several benches of one model on one device (one per scheme): each
     * scheme's full forward. PyTorch's timings of the same shapes beside them when given.
     */
    static Figure throughput(String id, List<LatencyBench.Result> benches, ReportData.TorchBench torch) {
        LatencyBench.Result first = benches.getFirst();
        if (first.rows() == null || first.rows().isEmpty()) return null;
        List<String> x = new ArrayList<>();
        Map<String, List<Double>> series = new LinkedHashMap<>();
        for (LatencyBench.Row row : first.rows()) {
            x.add("batch " + row.batch() + " × " + row.seq());
            if (benches.size() == 1) {
                add(series, "qdrift, full forward", row.batch(), row.medianMs());
                add(series, "qdrift, compute only", row.batch(), row.computeMs());
                add(series, "qdrift, CUDA graph", row.batch(), row.graphMs());
            } else {
                for (LatencyBench.Result b : benches) {
                    Double ms = null;
                    for (LatencyBench.Row r : b.rows()) if (r.batch() == row.batch() && r.seq() == row.seq()) ms = r.medianMs();
                    add(series, "qdrift " + schemeName(b), row.batch(), ms);
                }
            }
            if (torch != null) {
                for (String dtype : List.of("float32", "float16")) {
                    Double ms = null;
                    for (ReportData.TorchRow t : torch.rows())
                        if (dtype.equals(t.dtype()) && t.batch() == row.batch() && t.seq() == row.seq()) ms = t.medianMs();
                    add(series, "PyTorch " + dtype, row.batch(), ms);
                }
            }
        }
        // A category chart needs every series on every category: drop the ones with gaps.
        series.values().removeIf(v -> v.size() != x.size() || v.stream().anyMatch(d -> d == null || !Double.isFinite(d)));
        if (series.isEmpty()) return null;
        String title = (benches.size() == 1 ? "Throughput, " : "Throughput per scheme, ") + first.model();
        CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("input shape")
                .yAxisTitle("sentences / s").build();
        style(c.getStyler());
        c.getStyler().setYAxisDecimalPattern("#,##0");
        series.forEach((name, v) -> c.addSeries(name, x, v));
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("shapes", x);
        data.putAll(series);
        return figure(id, title, "Sentences per second from the median latency (batch / median). Device: " + first.device() + "."
                + (torch != null ? " PyTorch: " + torch.device() + ", torch " + torch.torch() + "." : ""), c, data);
    }

    /** A bench's scheme; files from before benches had schemes are FP32. */
    static String schemeName(LatencyBench.Result b) {
        return b.scheme() == null ? "fp32" : b.scheme();
    }

    /** FP32, however the bench wrote it ("fp32", "fp32 (simulated)", or no scheme at all). */
    static boolean isFp32(LatencyBench.Result b) {
        return schemeName(b).equals("fp32") || schemeName(b).startsWith("fp32 ");
    }

    private static void add(Map<String, List<Double>> series, String name, int batch, Double ms) {
        series.computeIfAbsent(name, k -> new ArrayList<>()).add(ms == null ? null : batch * 1000.0 / ms);
    }

    // ---- export ----

    /** Tableau 10: distinct hues that stay apart for the six activation sites and up to six PEG groups. */
    private static final Color[] PALETTE = {new Color(0x4E79A7), new Color(0xF28E2B), new Color(0xE15759), new Color(0x76B7B2),
            new Color(0x59A14F), new Color(0xEDC948), new Color(0xB07AA1), new Color(0xFF9DA7), new Color(0x9C755F), new Color(0xBAB0AC)};

    private static void style(Styler s) {
        s.setSeriesColors(PALETTE);
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBorderVisible(false);
        s.setLegendPosition(Styler.LegendPosition.OutsideS);
        s.setLegendLayout(Styler.LegendLayout.Horizontal);
        s.setLegendBorderColor(Color.WHITE);
        s.setChartTitleBoxVisible(false);
        if (s instanceof org.knowm.xchart.style.AxesChartStyler a) a.setPlotGridLinesColor(new Color(0xDDDDDD));
    }

    private static final Pattern ID = Pattern.compile("\\bid=\"([^\"]+)\"");
    /** Coordinates with more than 2 decimals: a hundredth of a pixel is invisible and halves the file. */
    private static final Pattern LONG_DECIMAL = Pattern.compile("(\\d\\.\\d\\d)\\d+");

    private static Figure figure(String id, String title, String caption, Chart<?, ?> chart, Map<String, Object> data) {
        // XChart's horizontal legend does not wrap: with many or long series names it runs off the
        // chart, so those legends go to the right, one name a line.
        int chars = chart.getSeriesMap().keySet().stream().mapToInt(k -> k.length() + 6).sum();
        if (chars > 110) {
            chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
            chart.getStyler().setLegendLayout(Styler.LegendLayout.Vertical);
        }
        return new Figure(id, title, caption, svg(chart, id, title), data);
    }

    /**
     * The chart as an {@code <svg>} element ready to inline in HTML: without the XML prolog and the
     * DOCTYPE (whose DTD URL would be the only network reference in the page), without the namespace
     * declarations HTML does not need, with coordinates rounded to 0.01 px, with its ids prefixed so that several charts in one page
     * cannot clash (VectorGraphics2D numbers its clip paths by hash code), and labelled for screen
     * readers (the chart's text is drawn as paths).
     */
    static String svg(Chart<?, ?> chart, String id, String label) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            VectorGraphicsEncoder.saveVectorGraphic(chart, out, VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
        } catch (IOException e) {
            throw new UncheckedIOException(e);   // a byte array stream does not fail
        }
        String s = out.toString(StandardCharsets.UTF_8);
        s = s.substring(s.indexOf("<svg"));
        s = LONG_DECIMAL.matcher(s).replaceAll("$1");
        s = s.replaceFirst("\\s+xmlns:xlink=\"[^\"]*\"", "").replaceFirst("\\s+xmlns=\"[^\"]*\"", "");
        s = ID.matcher(s).replaceAll(m -> java.util.regex.Matcher.quoteReplacement("id=\"" + id + "-" + m.group(1) + "\""));
        s = s.replace("url(#", "url(#" + id + "-").replace("href=\"#", "href=\"#" + id + "-");
        return s.replaceFirst("<svg", "<svg role=\"img\" aria-label=\"" + HtmlWriter.escape(label) + "\"");
    }
}
