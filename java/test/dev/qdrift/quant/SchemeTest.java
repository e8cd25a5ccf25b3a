package dev.qdrift.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SchemeTest {
    @Test
    void presetsParse() {
        for (String p : Scheme.PRESETS) assertEquals(p, Scheme.parse(p).name());
        assertTrue(Scheme.parse("fp32").isFp32());
        assertEquals(99.9, Scheme.parse("w8a8-pct99.9").activations().percentile());
        assertEquals(6, Scheme.parse("peg6").activations().groups());
        assertEquals(4, Scheme.parse("w4a8").weights().bits());
        assertTrue(Scheme.parse("mixed").searchMixed());
    }

    @Test
    void badSpecsGiveClearErrors(@TempDir Path dir) throws Exception {
        assertThrows(QdriftException.class, () -> Scheme.parse("w9a9"));
        assertThrows(QdriftException.class, () -> Scheme.parse("w8a8-pct100"));
        assertThrows(QdriftException.class, () -> Scheme.parse("pegX"));
        Path bits = dir.resolve("bits.json");
        Files.writeString(bits, "{\"weights\": {\"bits\": 9}}");
        var e = assertThrows(QdriftException.class, () -> Scheme.fromJson(bits));
        assertTrue(e.getMessage().contains("bits.json") && e.getMessage().contains("between 2 and 8"), e.getMessage());
        Path site = dir.resolve("site.json");
        Files.writeString(site, "{\"activations\": {\"bits\": 8}, \"fp32_sites\": [\"layer.2.attention_output\"]}");
        e = assertThrows(QdriftException.class, () -> Scheme.fromJson(site));
        assertTrue(e.getMessage().contains("unknown site 'layer.2.attention_output'"), e.getMessage());
        assertThrows(QdriftException.class, () -> Scheme.fromJson(dir.resolve("missing.json")));
        assertThrows(QdriftException.class, () -> CalibrationStats.load(dir.resolve("missing-calibration.json")));
    }

    @Test
    void customSchemeFromJson(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("s.json");
        Files.writeString(f, "{\"name\": \"w6a8-pt\", \"weights\": {\"bits\": 6, \"per_channel\": true},"
                + " \"activations\": {\"bits\": 8, \"granularity\": \"per_token\"}, \"fp32_sites\": [\"layer.5.output_residual\"]}");
        Scheme s = Scheme.fromJson(f);
        assertEquals("w6a8-pt", s.name());
        assertEquals(6, s.weights().bits());
        assertEquals(QuantSpec.Granularity.PER_TOKEN, s.activations().granularity());
        assertTrue(s.fp32Sites().contains("layer.5.output_residual"));
        Path noAct = dir.resolve("w.json");
        Files.writeString(noAct, "{\"weights\": {\"bits\": 8}}");
        assertNull(Scheme.fromJson(noAct).activations());
    }
}
