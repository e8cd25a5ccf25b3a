package dev.qdrift.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.experiment.RunInputs;
import dev.qdrift.model.TinyModelDir;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --report on every analysis command, run through {@link Main#run} as a user runs them, on the tiny
 * random-weight model ({@link TinyModelDir}) and the SST-2 dev fixture: each writes its results, then
 * the HTML report over them, and says where; the report names the head and the calibration with their
 * SHA-256 (computed here from the files' bytes). Bad input ends in one clear error line, exit 2.
 */
class ReportOptionTest {
    private static final String DATA = "java/test-resources/fixtures/sst2-dev-first100.tsv";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir static Path tmp;
    private static String model;
    private static Path head;

    /** What one command line printed, and its exit code. */
    record Run(int exit, String out, String err) {}

    @BeforeAll
    static void modelAndHead() throws Exception {
        Path dir = tmp.resolve("tiny-model");
        TinyModelDir.write(dir);
        model = dir.toString();
        head = tmp.resolve("head.safetensors");
        Run r = qdrift("train-head", "--model", model, "--data", DATA, "--limit", "40", "--split", "0.5", "--out", head.toString());
        assertEquals(0, r.exit(), r.err());
    }

    /** Runs qdrift with stdout and stderr captured (the commands print to System.out; picocli errors to System.err). */
    static Run qdrift(String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        try {
            int exit = Main.run(args);
            return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    @Test
    void evalReportsBesideItsJsonAndHashesTheHead() throws Exception {
        Path json = tmp.resolve("eval/eval.json");
        Run r = qdrift("eval", "--model", model, "--head", head.toString(), "--data", DATA, "--json", json.toString(), "--report");
        JsonNode report = written(r, tmp.resolve("eval/eval.report.html"), tmp.resolve("eval/eval.report.json"), "baseline");
        assertEquals(sha256(head), file(report, head.toString(), "head").path("sha256").asText());
        assertEquals("eval.json", report.path("inputs").path(0).path("path").asText(), "over that file alone");
        assertEquals(1, report.path("inputs").size());
    }

    @Test
    void quantizeEvalNamesHeadAndCalibrationWithTheirHashes() throws Exception {
        Path json = tmp.resolve("q/q.json"), calib = tmp.resolve("q/minilm.calib.json");
        Run r = qdrift("quantize-eval", "--model", model, "--head", head.toString(), "--data", DATA, "--schemes", "fp32,w8a8",
                "--calib-size", "8", "--calibration", calib.toString(), "--json", json.toString(), "--report");
        JsonNode report = written(r, tmp.resolve("q/q.report.html"), tmp.resolve("q/q.report.json"), "quantization");
        assertEquals(sha256(head), file(report, head.toString(), "head").path("sha256").asText());
        JsonNode c = report.path("provenance").path("calibrations").path(0);
        assertEquals(calib.toString(), c.path("file").asText());
        assertEquals(sha256(calib), c.path("sha256").asText());
        assertEquals("8", c.path("examples").asText(), "--calib-size 8 of the head's 20 training examples");
        assertEquals(Long.toString(RunInputs.CALIBRATION_SEED), c.path("seed").asText());
        assertEquals(RunInputs.CALIBRATION_METHOD, c.path("method").asText());
        assertEquals(DATA, c.path("data").asText());
        assertEquals("q.json", c.path("named in").asText());
        assertEquals(sha256(calib), file(report, calib.toString(), "calibration statistics").path("sha256").asText());
        assertTrue(Files.readString(tmp.resolve("q/q.report.html")).contains("Calibration [q.json]"));
    }

    @Test
    void outliersReportsOverItsOutDirectory() throws Exception {
        Path out = tmp.resolve("outliers");
        Run r = qdrift("outliers", "--model", model, "--data", DATA, "--limit", "8", "--out", out.toString(), "--report");
        JsonNode report = written(r, out.resolve("report.html"), out.resolve("report.json"), "outliers");
        assertTrue(report.path("provenance").path("devices").toString().contains("cpu"), "the backend the outliers ran on");
    }

    @Test
    void benchReportsBesideItsJsonWithTheDevice() throws Exception {
        Path json = tmp.resolve("bench/bench.json");
        Run r = qdrift("bench", "--model", model, "--batch", "1", "--seq", "8", "--runs", "1", "--warmup", "0", "--json", json.toString(),
                "--report");
        JsonNode report = written(r, tmp.resolve("bench/bench.report.html"), tmp.resolve("bench/bench.report.json"), "latency");
        String device = JSON.readTree(json.toFile()).path("device").asText();
        assertFalse(device.isEmpty());
        assertTrue(report.path("provenance").path("devices").path(0).asText().startsWith(device + " ["), report.path("provenance").toString());
    }

    @Test
    void igBenchReportsBesideItsJson() throws Exception {
        Path json = tmp.resolve("ig/ig.json");
        Run r = qdrift("bench", "--model", model, "--ig-steps", "2", "--ig-schemes", "fp32", "--seq", "8", "--runs", "1", "--warmup", "0",
                "--json", json.toString(), "--report");
        JsonNode report = written(r, tmp.resolve("ig/ig.report.html"), tmp.resolve("ig/ig.report.json"), "latency");
        assertTrue(report.toString().contains("\"ig-bench-"), "an IG throughput table: " + report.path("sections"));
    }

    @Test
    void driftReportsOverItsOutDirectoryWithRunJsonProvenance() throws Exception {
        Path out = tmp.resolve("drift"), calib = tmp.resolve("drift-calib.json"), driftHead = tmp.resolve("drift-head.safetensors");
        Files.copy(head, driftHead);   // changed below
        Run r = qdrift("drift", "--model", model, "--head", driftHead.toString(), "--data", DATA, "--limit", "2", "--schemes", "fp32,w8a8",
                "--steps", "2", "--calib-size", "8", "--calibration", calib.toString(), "--out", out.toString(), "--report");
        JsonNode report = written(r, out.resolve("report.html"), out.resolve("report.json"), "drift");
        JsonNode h = file(report, driftHead.toString(), "head");
        String headSha = sha256(driftHead);
        assertEquals(headSha, h.path("sha256").asText());
        assertTrue(h.path("note").isNull(), "the hash run.json recorded is the file's: " + h);
        assertEquals(List.of("aggregate.json", "run.json"), JSON.convertValue(h.path("namedIn"), List.class));
        JsonNode c = report.path("provenance").path("calibrations").path(0);
        assertEquals("run.json", c.path("named in").asText());
        assertEquals(sha256(calib), c.path("sha256").asText());
        assertEquals("at most 8 (--calib-size)", c.path("examples").asText());
        List<String> kinds = new ArrayList<>();
        report.path("inputs").forEach(i -> kinds.add(i.path("path").asText() + ": " + i.path("kind").asText()));
        assertEquals(List.of("aggregate.json: DRIFT", "run.json: DRIFT_RUN"), kinds);

        // The head replaced after the run: a later report says so, with the hash the run recorded.
        Files.writeString(driftHead, "another head");
        assertEquals(0, qdrift("report", out.toString()).exit());
        JsonNode again = file(JSON.readTree(out.resolve("report.json").toFile()), driftHead.toString(), "head");
        assertEquals(sha256(driftHead), again.path("sha256").asText());
        assertEquals("changed since the run, which recorded SHA-256 " + headSha, again.path("note").asText());
    }

    @Test
    void reportWithoutJsonIsRefusedBeforeAnyWork() {
        Run r = qdrift("quantize-eval", "--model", "no-such-model", "--head", head.toString(), "--data", DATA, "--report");
        assertEquals(Main.EXIT_BAD_INPUT, r.exit());
        assertEquals("qdrift: error: --report needs --json FILE: the report is written over the results saved there", r.err().strip());
        Run bench = qdrift("bench", "--model", "no-such-model", "--report");
        assertTrue(bench.err().contains("--report needs --json FILE"), bench.err());
    }

    @Test
    void missingOrEmptyInputIsOneClearError(@TempDir Path dir) throws Exception {
        Run missing = qdrift("report", dir.resolve("nope").toString());
        assertEquals(Main.EXIT_BAD_INPUT, missing.exit());
        assertEquals("qdrift: error: " + dir.resolve("nope") + ": no such directory or file", missing.err().strip());

        Files.writeString(dir.resolve("broken.json"), "{ not json");
        Files.writeString(dir.resolve("notes.json"), "{\"hello\": 1}");
        Run malformed = qdrift("report", dir.toString());
        assertEquals(Main.EXIT_BAD_INPUT, malformed.exit());
        String err = malformed.err().strip();
        assertTrue(err.startsWith("qdrift: error: " + dir + ": no qdrift results found"), err);
        assertTrue(err.contains("broken.json (not JSON") && err.contains("notes.json (no known result fields)"), "says what it found: " + err);
        assertFalse(Files.exists(dir.resolve("report.html")));
    }

    /** The command succeeded, said where the report is, and wrote it: HTML with the section, and the JSON beside it. */
    private static JsonNode written(Run r, Path html, Path json, String section) throws Exception {
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("report     " + html + " ("), "prints where the report is: " + r.out());
        String page = Files.readString(html);
        assertTrue(page.startsWith("<!DOCTYPE html>") && page.contains("<section id=\"" + section + "\">"), section);
        JsonNode report = JSON.readTree(json.toFile());
        assertEquals(Main.VERSION, report.path("provenance").path("versions").path("qdrift").asText());
        return report;
    }

    /** The provenance entry of a file by path and role. */
    private static JsonNode file(JsonNode report, String path, String role) {
        for (JsonNode f : report.path("provenance").path("files"))
            if (f.path("path").asText().equals(path) && f.path("role").asText().equals(role)) return f;
        throw new AssertionError("no " + role + " " + path + " in " + report.path("provenance").path("files"));
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
