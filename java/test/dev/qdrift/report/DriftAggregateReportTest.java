package dev.qdrift.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.experiment.DriftAggregate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The report against the drift run's own aggregate records (experiment.DriftAggregate), serialized
 * as the drift command writes them: if the writer and {@link DriftData} drift apart, this fails.
 */
class DriftAggregateReportTest {
    @Test
    void readsTheDriftAggregate(@TempDir Path dir) throws Exception {
        DriftAggregate.Result r = new DriftAggregate.Result("qdrift-drift", "builtin:minilm", "heads/h.safetensors", "builtin:demo",
                "integrated gradients, 32 steps", "logit of the FP32-predicted class", "cpu (test)",
                Map.of("data", "builtin:demo", "task", "sst2", "seed", "13"),
                4, Map.of("resamples", 1000), List.of(scheme("fp32", 1.0, 1.0, 0), scheme("w8a8", 0.7, 0.75, 1)),
                List.of(new DriftAggregate.Example("a fine film", "positive", List.of("a", "fine", "film"),
                        attributions(), Map.of("fp32", "positive", "w8a8", "positive"))));
        ReportFixtures.MAPPER.writeValue(dir.resolve("aggregate.json").toFile(), r);

        ReportData data = ReportData.read(dir);
        assertEquals(1, data.drift.size(), data.inputs.toString());
        DriftData d = data.drift.getFirst().value();
        DriftData.SchemeDrift w8 = d.schemes().get(1);
        assertEquals(0.75, w8.meanSpearman(), 1e-12);
        assertEquals(0.75, w8.agreement(), 1e-12);
        assertEquals(1, w8.flips());
        assertEquals(List.of("FP32 correct", "gold positive", "<=10 words"), w8.groups().stream().map(DriftData.Group::name).toList());
        assertEquals(4, w8.fp32Logits().length);

        Report.Written w = Report.write(dir, dir.resolve("report.html"), "qdrift");
        String html = Files.readString(w.html());
        for (String fig : List.of("fig-spearman", "fig-agreement", "fig-logits"))
            assertTrue(html.matches("(?s).*<figure id=\"" + fig + "-\\d+\">\\s*<svg .*"), fig);
        assertTrue(html.contains("By group of examples") && html.contains("class=\"tok\""));
    }

    private static DriftAggregate.SchemeResult scheme(String name, double rho0, double agreement, int flips) {
        DriftAggregate.Stat rho = new DriftAggregate.Stat(rho0 == 1.0 ? 1.0 : 0.75, 0.7, 0.8, 4);
        DriftAggregate.Group g = new DriftAggregate.Group(4, Map.of("spearman", rho), agreement, 0.5, 1.0, flips, 0.75, null, null, null, null);
        return new DriftAggregate.SchemeResult(name, name, List.of(), 4, new double[] {rho0, rho0 + 0.05, rho0 + 0.05, rho0 == 1.0 ? 1.0 : 0.9},
                agreement, flips, g, Map.of("correct", g), Map.of("positive", g), Map.of("<=10", g),
                new DriftAggregate.LogitShift(new double[] {1, 2, 3, 4}, new double[] {1.1, 1.9, 3.2, 3.5}));
    }

    private static Map<String, double[]> attributions() {
        Map<String, double[]> a = new LinkedHashMap<>();
        a.put("fp32", new double[] {0.1, 0.8, 0.1});
        a.put("w8a8", new double[] {0.3, 0.5, -0.2});
        return a;
    }
}
