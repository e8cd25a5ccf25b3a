package dev.qdrift.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.DatasetLoader;
import dev.qdrift.data.Task;
import dev.qdrift.experiment.Outliers;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The report against the real outliers writer (not a hand-made file): {@link Outliers#run} on eight
 * real sentences, serialized as {@code qdrift outliers} does, must give the report its depth series,
 * per-layer table, channel ranges with PEG groups, and outlier channels.
 */
class OutliersReportTest {
    @Test
    void readsWhatOutliersWrites(@TempDir Path dir) throws Exception {
        Model model = ModelLoader.load("builtin:minilm");
        Dataset d = DatasetLoader.load("java/test-resources/fixtures/sst2-dev-first100.tsv", Task.SST2).limit(8);
        Outliers.Result r;
        try (CpuBackend cpu = new CpuBackend()) {
            r = Outliers.run(model, new Encoder(model.weights(), cpu), d, 8);
        }
        ObjectNode root = ReportFixtures.MAPPER.createObjectNode();
        root.putPOJO("selection", Map.of("data", "java/test-resources/fixtures/sst2-dev-first100.tsv", "task", "sst2", "seed", "13"));
        root.setAll((ObjectNode) ReportFixtures.MAPPER.valueToTree(r));
        ReportFixtures.MAPPER.writeValue(dir.resolve("outliers.json").toFile(), root);

        ReportData data = ReportData.read(dir);
        assertEquals(1, data.outliers.size(), data.inputs.toString());
        OutlierData o = data.outliers.getFirst().value();
        assertEquals(6, o.layers());
        assertEquals(6, o.kurtosisByDepth().get("output_residual").length);
        assertTrue(o.energyByDepth().containsKey("intermediate"));
        assertEquals(7, o.layerRows().size(), "embeddings + 6 layers");
        assertNotNull(o.ranges());
        assertEquals(384, o.ranges().min().length, "a hidden-size site");
        assertTrue(o.ranges().pegGroups().containsKey("3"));
        assertTrue(!o.topOutliers().isEmpty(), "MiniLM has outlier channels on real sentences");

        ReportModel m = Report.build(data, "qdrift");
        List<String> figures = m.sections().stream().flatMap(s -> s.blocks().stream())
                .filter(b -> b instanceof ReportModel.Figure).map(b -> ((ReportModel.Figure) b).id().replaceAll("-\\d+$", "")).toList();
        assertEquals(List.of("fig-kurtosis", "fig-energy", "fig-ranges"), figures);
        assertTrue(m.notShown().stream().noneMatch(s -> s.contains("Kurtosis") || s.contains("ranges") || s.contains("Energy")), m.notShown().toString());
    }
}
