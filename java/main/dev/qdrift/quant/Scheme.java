package dev.qdrift.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.QdriftException;
import dev.qdrift.model.Site;
import dev.qdrift.quant.QuantSpec.Calibrator;
import dev.qdrift.quant.QuantSpec.Granularity;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A quantization scheme for the whole encoder: how linear weights are quantized (null: FP32), how
 * activations are (null: FP32), which activation sites stay FP32 (keys like "layer.3.intermediate"),
 * and whether that set is searched automatically (mixed precision). Embeddings, the pooler and the
 * classifier head always stay FP32.
 *
 * <p>Activation sites quantized, as in the outlier study: the inputs of every linear layer (LayerNorm
 * outputs, attention context, FFN intermediate), both residual sums, and the LayerNorm outputs —
 * {@link #ACTIVATION_SITES}. Attention scores and probabilities are not quantized.
 */
public record Scheme(String name, QuantSpec weights, QuantSpec activations, Set<String> fp32Sites, boolean searchMixed) {

    /** Sites whose activations a scheme quantizes (ATTENTION_INPUT is the OUTPUT_NORM / EMBEDDINGS tensor itself). */
    public static final List<Site> ACTIVATION_SITES = List.of(Site.EMBEDDINGS, Site.ATTENTION_CONTEXT, Site.ATTENTION_RESIDUAL,
            Site.ATTENTION_NORM, Site.INTERMEDIATE, Site.OUTPUT_RESIDUAL, Site.OUTPUT_NORM);

    public static final List<String> PRESETS = List.of("fp32", "w8a8", "w8a8-pct99.99", "w8a8-mse", "w8a8-pc", "w8a8-pt", "w8a8-sym",
            "peg3", "peg4", "peg6", "mixed", "w4a8");

    public Scheme {
        fp32Sites = Set.copyOf(fp32Sites);
    }

    public boolean isFp32() {
        return weights == null && activations == null;
    }

    /** A preset name, or a path to a JSON file describing a custom scheme. */
    public static Scheme parse(String s) {
        String n = s.trim();
        if (n.endsWith(".json")) return fromJson(Path.of(n));
        QuantSpec w8 = QuantSpec.weights(8, false), w8pc = QuantSpec.weights(8, true);
        QuantSpec a8 = QuantSpec.activations(8, Calibrator.MINMAX, 0);
        return switch (n) {
            case "fp32" -> new Scheme(n, null, null, Set.of(), false);
            case "w8a8" -> new Scheme(n, w8, a8, Set.of(), false);
            case "w8a8-mse" -> new Scheme(n, w8, QuantSpec.activations(8, Calibrator.MSE, 0), Set.of(), false);
            case "w8a8-running" -> new Scheme(n, w8, QuantSpec.activations(8, Calibrator.RUNNING_MINMAX, 0), Set.of(), false);
            case "w8a8-pc" -> new Scheme(n, w8pc, a8, Set.of(), false);
            case "w8a8-pt" -> new Scheme(n, w8pc, new QuantSpec(8, true, Granularity.PER_TOKEN, 0, Calibrator.MINMAX, 0), Set.of(), false);
            case "w8a8-sym" -> new Scheme(n, w8pc, new QuantSpec(8, true, Granularity.PER_TENSOR, 0, Calibrator.MINMAX, 0), Set.of(), false);
            case "mixed" -> new Scheme(n, w8, a8, Set.of(), true);
            case "w4a8" -> new Scheme(n, QuantSpec.weights(4, true), a8, Set.of(), false);
            default -> {
                if (n.startsWith("w8a8-pct"))
                    yield new Scheme(n, w8, QuantSpec.activations(8, Calibrator.PERCENTILE, number(n.substring(8), n)), Set.of(), false);
                if (n.startsWith("peg"))
                    yield new Scheme(n, w8, new QuantSpec(8, false, Granularity.PER_GROUP, (int) number(n.substring(3), n), Calibrator.MINMAX, 0),
                            Set.of(), false);
                throw new QdriftException("unknown scheme '" + n + "': use one of " + PRESETS + " (w8a8-pctP for any percentile P, "
                        + "pegK for any K groups) or a .json file");
            }
        };
    }

    public static List<Scheme> parseList(String csv) {
        List<Scheme> out = new ArrayList<>();
        for (String s : csv.split(",")) if (!s.isBlank()) out.add(parse(s));
        if (out.isEmpty()) throw new QdriftException("no schemes given");
        return out;
    }

    private static double number(String s, String scheme) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            throw new QdriftException("scheme '" + scheme + "': '" + s + "' is not a number");
        }
    }

    /**
     * A custom scheme: {"name": "...", "weights": {"bits": 8, "per_channel": true} | null,
     * "activations": {"bits": 8, "symmetric": false, "granularity": "per_tensor|per_token|per_group",
     * "groups": 4, "calibrator": "minmax|running_minmax|percentile|mse", "percentile": 99.9} | null,
     * "fp32_sites": ["layer.5.output_residual", ...], "search_mixed": false}.
     */
    public static Scheme fromJson(Path file) {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot read scheme: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) throw new QdriftException(file + ": a scheme file must be a JSON object");
        try {
            QuantSpec w = null, a = null;
            JsonNode wn = n.path("weights"), an = n.path("activations");
            if (wn.isObject()) w = QuantSpec.weights(wn.path("bits").asInt(8), wn.path("per_channel").asBoolean(false));
            if (an.isObject()) {
                Granularity g = Granularity.valueOf(an.path("granularity").asText("per_tensor").toUpperCase());
                Calibrator c = Calibrator.valueOf(an.path("calibrator").asText("minmax").toUpperCase());
                a = new QuantSpec(an.path("bits").asInt(8), an.path("symmetric").asBoolean(false), g, an.path("groups").asInt(0), c,
                        an.path("percentile").asDouble(0));
            }
            Set<String> fp32 = new LinkedHashSet<>();
            for (JsonNode s : n.path("fp32_sites")) fp32.add(checkSiteKey(s.asText(), file));
            return new Scheme(n.path("name").asText(file.getFileName().toString()), w, a, fp32, n.path("search_mixed").asBoolean(false));
        } catch (IllegalArgumentException e) {
            throw new QdriftException(file + ": " + e.getMessage(), e);
        } catch (QdriftException e) {
            throw new QdriftException(file + ": " + e.getMessage(), e);
        }
    }

    /** "embeddings" or "layer.N.site" with a quantized site name; anything else is an error. */
    static String checkSiteKey(String key, Object where) {
        if (key.equals("embeddings")) return key;
        String[] p = key.split("\\.");
        boolean ok = p.length == 3 && p[0].equals("layer") && p[1].matches("\\d+")
                && ACTIVATION_SITES.stream().anyMatch(s -> s != Site.EMBEDDINGS && s.name().toLowerCase().equals(p[2]));
        if (!ok) throw new QdriftException("unknown site '" + key + "' in " + where + ": use embeddings or layer.N.<site> with site one of "
                + ACTIVATION_SITES.stream().filter(s -> s != Site.EMBEDDINGS).map(s -> s.name().toLowerCase()).toList());
        return key;
    }

    public String describe() {
        if (isFp32()) return "FP32";
        return "weights " + (weights == null ? "FP32" : weights.describe()) + "; activations "
                + (activations == null ? "FP32" : activations.describe())
                + (fp32Sites.isEmpty() ? "" : "; FP32 sites " + fp32Sites) + (searchMixed ? "; FP32 sites searched" : "")
                + "; embeddings and head FP32";
    }
}
