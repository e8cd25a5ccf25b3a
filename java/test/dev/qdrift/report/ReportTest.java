package dev.qdrift.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qdrift.QdriftException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qdrift report} over a directory with one result of every kind: the tables, the charts, self-containment, report.json. */
class ReportTest {
    @TempDir static Path dir;
    static Report.Written written;
    static String html;

    @BeforeAll
    static void writeReport() throws Exception {
        ReportFixtures.writeAll(dir);
        written = Report.write(dir, dir.resolve("report.html"), "qdrift 0.1.0");
        html = Files.readString(written.html());
    }

    @Test
    void writesHtmlAndJsonBesideIt() {
        assertEquals(dir.resolve("report.json"), written.json());
        assertTrue(Files.isRegularFile(written.json()));
        assertTrue(html.startsWith("<!DOCTYPE html>"));
        assertTrue(html.strip().endsWith("</html>"));
    }

    @Test
    void everySectionIsThereAndNothingIsMissing() {
        for (String id : List.of("provenance", "verification", "baseline", "quantization", "outliers", "drift", "latency", "inputs"))
            assertTrue(html.contains("<section id=\"" + id + "\">"), id);
        assertEquals(List.of(), written.notShown());
        assertFalse(html.contains("NaN"), "missing values are shown as a dash, never NaN");
    }

    @Test
    void accuracyTableOfTheSchemes() {
        String table = between(html, "Accuracy per scheme</h3>", "</table>");
        for (String s : List.of(">fp32<", ">w8a8<", ">peg3<", ">mixed<", "91.2%", "80.2%", "89.0%", "-11.0", "2.50e-01", ">41<"))
            assertTrue(table.contains(s), "accuracy table has " + s);
        assertTrue(html.contains("mixed keeps 1 activation site(s) in FP32: layer.0.output_residual"));
        String speed = between(html, "Throughput and memory per scheme</h3>", "</table>");
        assertTrue(speed.contains("150.0") && speed.contains("0.60"), "examples/s and the ratio to FP32");
    }

    @Test
    void baselineVerificationAndLatency() {
        assertTrue(html.contains("91.2% (95% CI 89.0–93.0%) on 272 examples"));
        assertTrue(between(html, "Per class and confusion matrix", "</table>").contains(">131<"));
        assertTrue(html.contains("max relative error 3.20e-06"));
        assertTrue(html.contains("class=\"pass\""));
        assertTrue(html.contains("76.0% on 96 examples"), "demo.json's held-out accuracy");
        String bench = between(html, "<section id=\"latency\">", "</section>");
        assertTrue(bench.contains("8421.9") && bench.contains("PyTorch fp16 ms") && bench.contains(">2.60<"), "bench with PyTorch beside it");
        assertTrue(bench.contains(">w8a8-pt (s8 kernels)<") && bench.contains(">13333.3<"), "the int8 bench in the same table");
        assertTrue(bench.contains("speed-up vs FP32") && bench.contains(">1.58<"), "3.80 ms / 2.40 ms");
        assertTrue(bench.contains("Throughput per scheme, shape:minilm"));
    }

    /** The IG bench with PyTorch's IG of the same model, steps and length: PyTorch's time over ours per dtype. */
    @Test
    void integratedGradientsThroughput() {
        String ig = between(html, "Integrated Gradients, shape:bert-base", "</table>");
        for (String s : List.of(">fp32 TF32<", ">70.82<", ">24.73<", ">92.2<", "4.00e-04", "× PyTorch tf32", ">0.90<", ">0.80<", ">2.60<"))
            assertTrue(ig.contains(s), "IG table has " + s);   // 22.34 / 24.73, 19.82 / 24.73, 64.32 / 24.73
        assertFalse(html.contains("PyTorch 2.11.0+cu130 IG"), "the PyTorch IG file is shown inside the IG table, not alone");
    }

    @Test
    void outlierTablesAndDriftHeatMaps() {
        String outliers = between(html, "<section id=\"outliers\">", "</section>");
        assertTrue(outliers.contains("271.3") || outliers.contains("271.2"), "max kurtosis of the last layer");
        assertTrue(outliers.contains("55.0%"));
        assertTrue(outliers.contains("cls 100%"), "which tokens the outlier channel fires on");
        String drift = between(html, "<section id=\"drift\">", "</section>");
        assertTrue(drift.contains("class=\"tok\""));
        assertTrue(drift.contains("class=\"tok piece\""), "a ## word piece joins its word");
        assertTrue(drift.contains(">ping<"));
        assertTrue(drift.contains("background:rgba(214,39,40,1.00)"), "the largest positive attribution at full red");
        assertTrue(drift.contains("background:rgba(31,119,180,"), "negative attributions in blue");
        assertTrue(drift.contains("→ negative"), "predictions per precision");
        String perScheme = between(drift, "Attribution similarity per scheme</h3>", "</table>");
        assertTrue(perScheme.contains(">kendall<") && perScheme.contains("0.512")
                && perScheme.contains(String.format(java.util.Locale.ROOT, ">%.3f<", 0.6475)), "aggregate statistics");
        assertTrue(perScheme.contains(">peg3<") && perScheme.contains("95.0%"), "peg3's agreement comes from quantize-eval when the drift file has none");
        String groups = between(drift, "By group of examples</h3>", "</table>");
        assertTrue(groups.contains("FP32 incorrect") && groups.contains("0.610"));
        assertFalse(groups.contains("&gt;20 words"), "empty groups are left out");
        assertFalse(groups.contains(">fp32<"), "the reference is not broken down");
    }

    /** At least one inline SVG per expected chart, each inside its figure. */
    @Test
    void oneSvgPerChart() {
        List<String> figures = new ArrayList<>();
        Matcher m = Pattern.compile("<figure id=\"([a-z-]+)-\\d+\">\\s*<svg ").matcher(html);
        while (m.find()) figures.add(m.group(1));
        assertEquals(List.of("fig-accuracy", "fig-kurtosis", "fig-energy", "fig-ranges", "fig-spearman", "fig-agreement", "fig-logits",
                "fig-throughput"), figures);
        assertEquals(8, written.figures());
        assertTrue(count(html, "<svg ") >= 8 && count(html, "</svg>") == count(html, "<svg "));
        // Clip-path ids are prefixed per chart, so none repeats in the page.
        Matcher ids = Pattern.compile("\\bid=\"([^\"]+)\"").matcher(html);
        List<String> seen = new ArrayList<>();
        while (ids.find()) {
            assertFalse(seen.contains(ids.group(1)), "duplicate id " + ids.group(1));
            seen.add(ids.group(1));
        }
    }

    @Test
    void selfContained() {
        assertFalse(Pattern.compile("(?i)\\b(src|href)\\s*=\\s*[\"']?\\s*(https?:)?//").matcher(html).find(), "no external src/href");
        assertFalse(Pattern.compile("(?i)url\\(\\s*[\"']?\\s*(https?:)?//").matcher(html).find(), "no external url() in CSS or SVG");
        assertFalse(html.contains("@import"));
        assertFalse(html.toLowerCase().contains("<script"), "no script at all");
        assertFalse(html.toLowerCase().contains("<link"), "no stylesheet links");
        assertFalse(html.toLowerCase().contains("<img"), "charts are inline SVG, not images");
        // Nothing in these results names a URL, so any http(s) in the page would be ours (a DTD, a namespace, a font).
        assertFalse(html.contains("http://") || html.contains("https://"), "no http(s):// anywhere");
    }

    @Test
    void provenanceHashesTheDataFileItFinds() throws Exception {
        String sha = sha256(ReportFixtures.DATA_TEXT);
        assertTrue(html.contains(sha), "SHA-256 of the data file named in the results");
        assertTrue(html.contains("builtin:demo") && html.contains("built in (shipped with qdrift)"));
        assertTrue(html.contains("heads/minilm-sst2.safetensors") && html.contains("not found here: no hash"));
        assertTrue(html.contains("13: " + dir.resolve("data.tsv") + " (sst2)"), "seed with what it selected");
        assertTrue(html.contains("cuda NVIDIA H100 80GB HBM3"), "device strings");
        assertTrue(html.contains("qdrift 0.1.0"));
        String inputs = between(html, "<section id=\"inputs\">", "</section>");
        assertTrue(inputs.contains("q-run-1.json") && inputs.contains("quantize-eval"), "recognized by content, not name");
        assertTrue(inputs.contains("nested/deeper/timings.json"), "subdirectories are read");
        assertTrue(inputs.contains("notes.json") && inputs.contains("no known result fields"));
        assertTrue(inputs.contains("broken.json") && inputs.contains("not JSON"));
    }

    /** The head and calibration quantize-eval names, hashed (SHA-256 computed here, not by the report's code); versions; devices. */
    @Test
    void provenanceNamesHeadCalibrationVersionsAndDevices() throws Exception {
        JsonNode p = ReportFixtures.MAPPER.readTree(written.json().toFile()).path("provenance");
        String headSha = sha256(ReportFixtures.HEAD_BYTES), calibSha = sha256(ReportFixtures.CALIBRATION_BYTES);
        JsonNode head = null;
        for (JsonNode f : p.path("files")) if (f.path("path").asText().equals(dir.resolve("head.safetensors").toString())) head = f;
        assertEquals("head", head.path("role").asText());
        assertEquals(headSha, head.path("sha256").asText());
        assertEquals("q-run-1.json", head.path("namedIn").path(0).asText());

        assertEquals(1, p.path("calibrations").size());
        JsonNode c = p.path("calibrations").path(0);
        assertEquals(dir.resolve("minilm.calib.json").toString(), c.path("file").asText());
        assertEquals(calibSha, c.path("sha256").asText());
        assertEquals("256", c.path("examples").asText());
        assertEquals("20261123", c.path("seed").asText());
        assertEquals("a seeded sample; two FP32 passes", c.path("method").asText());
        assertEquals("q-run-1.json", c.path("named in").asText());
        String calibration = between(html, "Calibration [q-run-1.json]</h3>", "</dl>");
        assertTrue(calibration.contains(calibSha) && calibration.contains("20261123") && calibration.contains("two FP32 passes"), calibration);

        JsonNode v = p.path("versions");
        assertEquals("qdrift 0.1.0", v.path("qdrift").asText());
        assertTrue(v.path("Java").asText().contains(System.getProperty("java.version")), v.toString());
        assertTrue(v.path("OS").asText().startsWith(System.getProperty("os.name")), v.toString());
        // The version in the DJL jar's own file name (tokenizers-0.38.0.jar), found independently of the report's code.
        String jar = Path.of(ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .getFileName().toString();
        assertEquals(jar, "tokenizers-" + v.path("DJL tokenizers").asText() + ".jar");
        String versions = between(html, "Versions (of the qdrift that wrote this report)</h3>", "</dl>");
        assertTrue(versions.contains("DJL tokenizers") && versions.contains(v.path("DJL tokenizers").asText()) && versions.contains(">OS<"));

        List<String> devices = new ArrayList<>();
        p.path("devices").forEach(d -> devices.add(d.asText()));
        assertTrue(devices.contains("cpu: test box, 2 cores [drift.json]"), "the drift file's device field: " + devices);
    }

    static String sha256(String text) throws Exception {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    @Test
    void reportJsonHoldsTheDataNotTheSvg() throws Exception {
        JsonNode j = ReportFixtures.MAPPER.readTree(written.json().toFile());
        assertEquals(ReportModel.VERSION, j.path(ReportModel.MARKER).asInt());
        assertTrue(j.path("provenance").path("files").size() >= 3);
        JsonNode accuracy = null;
        for (JsonNode s : j.path("sections"))
            for (JsonNode b : s.path("blocks"))
                if (b.path("id").asText().startsWith("fig-accuracy")) accuracy = b;
        assertEquals("figure", accuracy.path("type").asText());
        assertEquals(0.9123, accuracy.path("data").path("accuracy").path(0).asDouble(), 1e-12);
        assertTrue(accuracy.path("svg").isMissingNode(), "SVG stays in the HTML");
        assertFalse(Files.readString(written.json()).contains("<svg"));
        for (JsonNode s : j.path("sections"))
            for (JsonNode b : s.path("blocks"))
                if (b.path("id").asText().startsWith("fig-spearman")) {
                    assertFalse(b.path("data").has("fp32"), "the FP32 reference is not drawn against itself");
                    assertTrue(b.path("data").has("w8a8") && b.path("data").has("peg3"));
                }
    }

    @Test
    void aSecondRunSkipsItsOwnOutput() throws Exception {
        Path out = dir.resolve("again.html");
        Report.write(dir, out, "qdrift 0.1.0");
        String again = Files.readString(out);
        String inputs = between(again, "<section id=\"inputs\">", "</section>");
        assertFalse(inputs.contains("report.json"), "report.json of the first run is not an input");
        assertEquals(Report.jsonPath(out), dir.resolve("again.json"));
    }

    @Test
    void emptyDirectoryIsAnError(@TempDir Path empty) throws Exception {
        Files.writeString(empty.resolve("x.json"), "{}");
        QdriftException e = assertThrows(QdriftException.class, () -> Report.write(empty, empty.resolve("r.html"), "qdrift"));
        assertTrue(e.getMessage().contains("no qdrift results"));
        assertFalse(Files.exists(empty.resolve("r.html")));
    }

    @Test
    void partialDirectorySaysWhatIsNotShown(@TempDir Path partial) throws Exception {
        ReportFixtures.MAPPER.writeValue(partial.resolve("bench.json").toFile(), ReportFixtures.bench());
        Report.Written w = Report.write(partial, partial.resolve("report.html"), "qdrift");
        String h = Files.readString(w.html());
        assertTrue(h.contains("<section id=\"latency\">"));
        assertFalse(h.contains("<section id=\"quantization\">"));
        assertTrue(w.notShown().stream().anyMatch(s -> s.startsWith("Quantization schemes")));
        assertTrue(w.notShown().stream().anyMatch(s -> s.startsWith("Attribution drift") && s.contains("DriftData")));
        assertTrue(h.contains("Not in this report"));
    }

    static String between(String s, String from, String to) {
        int a = s.indexOf(from);
        assertTrue(a >= 0, "missing: " + from);
        int b = s.indexOf(to, a + from.length());
        assertTrue(b >= 0, "missing after " + from + ": " + to);
        return s.substring(a, b);
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) n++;
        return n;
    }
}
