package dev.qdrift.report;

import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.Verification;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where the results came from, gathered from every result file: which models, which data and head
 * files (with their SHA-256 when the file is here to hash, so a reader can check it is the same
 * file later), which devices and backends, which seeds, and which tool wrote the report when.
 *
 * @param tool       the qdrift version that wrote the report
 * @param generated  when the report was written (ISO-8601, UTC)
 * @param files      data, calibration and head files named in the results
 * @param devices    backend / device strings, each with the files that name it
 * @param seeds      each seed with what it selected
 */
public record Provenance(String tool, String java, String generated, List<String> models, List<FileRef> files, List<String> devices,
                         List<String> seeds) {

    /**
     * A file named in the results.
     *
     * @param path     as the result names it
     * @param role     "data", "calibration data", "head"
     * @param foundAt  where it was found here (paths in results are relative to where the command ran), or null
     * @param sha256   of foundAt's bytes, or null
     * @param note     "built in", "not found here", or null
     */
    public record FileRef(String path, String role, String foundAt, String sha256, Long bytes, String note, List<String> namedIn) {}

    /** How many directories above DIR a relative path in a result may be relative to. */
    private static final int ANCESTORS = 3;

    /** The calibration provenance is a Map.toString(): "{model=..., data=..., examples=256}". */
    private static final Pattern CALIBRATION_DATA = Pattern.compile("[{,]\\s*data=([^,}]+)");

    static Provenance collect(ReportData d, String tool, String generated) {
        Collector c = new Collector(d.dir);
        for (ReportData.Loaded<QuantizeEval.Result> l : d.quantize) {
            QuantizeEval.Result r = l.value();
            String from = l.input().path();
            c.model(r.model());
            c.file(r.data(), "data", from);
            if (r.calibration() != null) {
                Matcher m = CALIBRATION_DATA.matcher(r.calibration());
                if (m.find()) c.file(m.group(1).trim(), "calibration data", from);
            }
            c.device(r.backend(), from);
        }
        for (ReportData.Loaded<ReportData.EvalRun> l : d.evals) {
            ReportData.EvalRun r = l.value();
            String from = l.input().path();
            c.model(r.model());
            c.file(r.head(), "head", from);
            c.selection(r.selection(), from);
            c.device(r.backend(), from);
        }
        for (ReportData.Loaded<Verification.Result> l : d.verifications) {
            c.model(l.value().model());
            c.file(l.value().data(), "data", l.input().path());
            c.device(l.value().backend(), l.input().path());
        }
        for (ReportData.Loaded<ReportData.DemoRun> l : d.demos) {
            ReportData.DemoRun r = l.value();
            c.model(r.model());
            c.selection(r.selection(), l.input().path());
            c.file(r.head(), "head", l.input().path());
            if (r.verify() != null) c.device(r.verify().backend(), l.input().path());
        }
        for (ReportData.Loaded<LatencyBench.Result> l : d.benches) {
            c.model(l.value().model());
            c.device(l.value().device(), l.input().path());
        }
        for (ReportData.Loaded<ReportData.TorchBench> l : d.torchBenches) {
            c.model(l.value().model());
            c.device(l.value().device() + (l.value().torch() == null ? "" : ", PyTorch " + l.value().torch()), l.input().path());
        }
        for (ReportData.Loaded<ReportData.CpuBench> l : d.cpuBenches) {
            ReportData.CpuBench b = l.value();
            c.device(b.device() + (b.jvm() == null ? "" : ", " + b.jvm()), l.input().path());
        }
        for (ReportData.Loaded<OutlierData> l : d.outliers) {
            OutlierData o = l.value();
            c.model(o.model());
            c.file(o.data(), "data", l.input().path());
            c.selection(o.selection(), l.input().path());
            c.device(o.backend(), l.input().path());
        }
        for (ReportData.Loaded<DriftData> l : d.drift) {
            c.model(l.value().model());
            c.file(l.value().data(), "data", l.input().path());
            c.selection(l.value().selection(), l.input().path());
        }
        return new Provenance(tool, System.getProperty("java.vm.name") + " " + System.getProperty("java.version"), generated,
                List.copyOf(c.models), c.files(), c.devices(), c.seeds());
    }

    /** Accumulates, de-duplicated, in the order first seen. */
    private static final class Collector {
        final Path dir;
        final Set<String> models = new LinkedHashSet<>();
        final Map<String, FileRef> files = new LinkedHashMap<>();   // role + path → ref
        final Map<String, Set<String>> devices = new LinkedHashMap<>();
        final Map<String, Set<String>> seeds = new LinkedHashMap<>();   // seed and what it selected → files

        Collector(Path dir) {
            this.dir = dir;
        }

        void model(String id) {
            if (id != null && !id.isBlank()) models.add(id);
        }

        void device(String name, String from) {
            if (name != null && !name.isBlank() && !name.equals("null")) devices.computeIfAbsent(name, k -> new LinkedHashSet<>()).add(from);
        }

        void selection(Map<String, String> sel, String from) {
            if (sel == null || sel.isEmpty()) return;
            file(sel.get("data"), "data", from);
            String seed = sel.get("seed");
            if (seed == null) return;
            StringBuilder what = new StringBuilder(seed).append(": ").append(sel.getOrDefault("data", "?"));
            if (sel.get("task") != null) what.append(" (").append(sel.get("task")).append(')');
            if (sel.get("limit") != null) what.append(", sample of ").append(sel.get("limit"));
            if (sel.get("split") != null) what.append(", train fraction ").append(sel.get("split"));
            seeds.computeIfAbsent(what.toString(), k -> new LinkedHashSet<>()).add(from);
        }

        void file(String path, String role, String from) {
            if (path == null || path.isBlank()) return;
            FileRef old = files.get(role + '\0' + path);
            if (old != null) {
                if (!old.namedIn().contains(from)) old.namedIn().add(from);
                return;
            }
            List<String> namedIn = new ArrayList<>(List.of(from));
            FileRef ref;
            if (path.startsWith("builtin:") || path.startsWith("shape:")) {
                ref = new FileRef(path, role, null, null, null, "built in (shipped with qdrift)", namedIn);
            } else {
                Path found = locate(path);
                String sha = null, note = null;
                Long size = null;
                if (found == null) {
                    note = "not found here: no hash";
                } else {
                    try {
                        sha = ReportData.sha256(found);
                        size = Files.size(found);
                    } catch (IOException e) {
                        note = "cannot read: " + e.getMessage();
                    }
                }
                ref = new FileRef(path, role, found == null ? null : found.toString(), sha, size, note, namedIn);
            }
            files.put(role + '\0' + path, ref);
        }

        /**
         * Paths in results are as the user typed them, relative to where the command ran: try the
         * working directory, then DIR and a few of its ancestors (results usually live in out/ or
         * bench/results/DATE/ under the directory the command ran in).
         */
        Path locate(String p) {
            Path given;
            try {
                given = Path.of(p);
            } catch (RuntimeException e) {
                return null;
            }
            if (given.isAbsolute()) return Files.isRegularFile(given) ? given : null;
            if (Files.isRegularFile(given)) return given;
            Path base = dir.toAbsolutePath().normalize();
            for (int i = 0; i <= ANCESTORS && base != null; i++, base = base.getParent()) {
                Path candidate = base.resolve(given).normalize();
                if (Files.isRegularFile(candidate)) return candidate;
            }
            return null;
        }

        List<FileRef> files() {
            return List.copyOf(files.values());
        }

        List<String> devices() {
            return withSources(devices);
        }

        List<String> seeds() {
            return withSources(seeds);
        }

        /** "value [file, file]": each value once, with every result file that names it. */
        private static List<String> withSources(Map<String, Set<String>> m) {
            List<String> out = new ArrayList<>();
            m.forEach((value, from) -> out.add(value + " [" + String.join(", ", from) + "]"));
            return out;
        }
    }
}
