package dev.qdrift.report;

import dev.qdrift.QdriftException;
import dev.qdrift.experiment.IgBench;
import dev.qdrift.experiment.LatencyBench;
import dev.qdrift.experiment.RunInputs;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.Verification;
import dev.qdrift.model.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where the results came from, gathered from every result file: which models, which data, head and
 * calibration files (with their SHA-256 when the file is here to hash, so a reader can check it is
 * the same file later), how each calibration was made, which devices and backends, which seeds, and
 * which versions wrote the report when.
 *
 * @param versions      qdrift, Java, DJL tokenizers and OS of the process that wrote the report (results
 *                      do not record them; for a command's --report it is the process that ran it)
 * @param generated     when the report was written (ISO-8601, UTC)
 * @param files         data, calibration and head files named in the results
 * @param calibrations  per result that used calibration statistics: their file with its SHA-256, the
 *                      number of examples, the seed of the sample, the method, the data, and the result
 *                      file that names them ("named in")
 * @param devices       device / backend strings, each with the files that name it
 * @param seeds         each seed with what it selected
 */
public record Provenance(Map<String, String> versions, String generated, List<String> models, List<FileRef> files,
                         List<Map<String, String>> calibrations, List<String> devices, List<String> seeds) {

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

    /** The tool that wrote the report ("qdrift 0.1.0"). */
    public String tool() {
        return versions.get("qdrift");
    }

    /** @param tool the qdrift version writing the report */
    static Map<String, String> versions(String tool) {
        Map<String, String> v = new LinkedHashMap<>();
        v.put("qdrift", tool);
        v.put("Java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")");
        v.put("DJL tokenizers", Tokenizer.libraryVersion());
        v.put("OS", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        return v;
    }

    static Provenance collect(ReportData d, String tool, String generated) {
        Collector c = new Collector(d.dir);
        for (ReportData.Input in : d.inputs) c.device(in.device(), in.path());
        for (ReportData.Loaded<QuantizeEval.Result> l : d.quantize) {
            QuantizeEval.Result r = l.value();
            String from = l.input().path();
            c.model(r.model());
            c.file(r.data(), "data", from);
            c.file(r.head(), "head", from);
            if (r.calibration() != null) c.calibration(r.calibration(), from);
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
        for (ReportData.Loaded<IgBench.Result> l : d.igBenches) {
            c.model(l.value().model());
            c.device(l.value().device(), l.input().path());
        }
        for (ReportData.Loaded<ReportData.TorchIgBench> l : d.torchIgBenches) {
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
            c.file(l.value().head(), "head", l.input().path());
            c.selection(l.value().selection(), l.input().path());
        }
        for (ReportData.Loaded<ReportData.DriftRunArgs> l : d.driftRuns) {
            ReportData.DriftRunArgs r = l.value();
            String from = l.input().path();
            c.file(r.head(), "head", from, r.headSha256());
            c.selection(r.selection(), from);
            if (r.calibrationSha256() != null) c.calibration(driftCalibration(r), from);
        }
        return new Provenance(versions(tool), generated, List.copyOf(c.models), c.files(), List.copyOf(c.calibrations), c.devices(), c.seeds());
    }

    /**
     * A drift run's calibration, from its run.json: the file and the requested size are arguments there;
     * seed and method are those of {@link RunInputs}, the one way qdrift calibrates, which run.json does
     * not repeat.
     */
    private static Map<String, String> driftCalibration(ReportData.DriftRunArgs r) {
        Map<String, String> m = new LinkedHashMap<>();
        if (r.calibration() != null) m.put("file", r.calibration());
        m.put("examples", "at most " + r.calibSize() + " (--calib-size)");
        m.put("seed", Long.toString(RunInputs.CALIBRATION_SEED));
        m.put("method", RunInputs.CALIBRATION_METHOD);
        m.put("statistics sha256", r.calibrationSha256() + " (as the run recorded it: SHA-256 of the statistics' JSON)");
        return m;
    }

    /** Accumulates, de-duplicated, in the order first seen. */
    private static final class Collector {
        final Path dir;
        final Set<String> models = new LinkedHashSet<>();
        final Map<String, FileRef> files = new LinkedHashMap<>();   // role + path → ref
        final Map<String, Set<String>> devices = new LinkedHashMap<>();
        final Map<String, Set<String>> seeds = new LinkedHashMap<>();   // seed and what it selected → files
        final List<Map<String, String>> calibrations = new ArrayList<>();

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
            StringBuilder what = new StringBuilder(sel.getOrDefault("data", "?"));
            if (sel.get("task") != null) what.append(" (").append(sel.get("task")).append(')');
            if (sel.get("limit") != null) what.append(", sample of ").append(sel.get("limit"));
            if (sel.get("split") != null) what.append(", train fraction ").append(sel.get("split"));
            seed(sel.get("seed"), what.toString(), from);
        }

        /** "13: data.tsv (sst2), train fraction 0.7 [files]": a seed with what it selected. */
        void seed(String seed, String what, String from) {
            if (seed != null) seeds.computeIfAbsent(seed + ": " + what, k -> new LinkedHashSet<>()).add(from);
        }

        /**
         * A calibration as a result recorded it, with the statistics file (when there is one) hashed here;
         * its file and data also go in the files table.
         */
        void calibration(Map<String, String> recorded, String from) {
            Map<String, String> m = new LinkedHashMap<>();
            FileRef f = file(recorded.get("file"), "calibration statistics", from);
            if (f == null) {
                m.put("file", "none recorded (run without --calibration FILE, or written before results recorded it)");
            } else {
                m.put("file", f.path());
                if (f.sha256() != null) m.put("sha256", f.sha256());
                if (f.note() != null) m.put("file note", f.note());
            }
            recorded.forEach(m::putIfAbsent);
            file(recorded.get("data"), "calibration data", from);
            seed(recorded.get("seed"), "calibration sample, " + recorded.getOrDefault("examples", "?") + " examples of "
                    + recorded.getOrDefault("data", "the head's training data"), from);
            m.put("named in", from);
            calibrations.add(m);
        }

        FileRef file(String path, String role, String from) {
            return file(path, role, from, null);
        }

        /**
         * Names a file and hashes it where found. Only data can be built in (builtin:demo); a head or a
         * calibration is always a file.
         *
         * @param recordedSha256 the hash the result recorded when it ran, or null: compared with the file found
         *                       here, and kept when the file is not here
         * @return the file's entry, null when path is empty
         */
        FileRef file(String path, String role, String from, String recordedSha256) {
            if (path == null || path.isBlank()) return null;
            String key = role + '\0' + path;
            FileRef old = files.get(key);
            if (old != null) {
                if (!old.namedIn().contains(from)) old.namedIn().add(from);
                if (changed(old.sha256(), recordedSha256) && old.note() == null)   // first named by a result that recorded no hash
                    files.put(key, old = new FileRef(old.path(), old.role(), old.foundAt(), old.sha256(), old.bytes(), changedNote(recordedSha256),
                            old.namedIn()));
                return old;
            }
            List<String> namedIn = new ArrayList<>(List.of(from));
            FileRef ref;
            if (role.contains("data") && path.startsWith("builtin:")) {
                ref = new FileRef(path, role, null, null, null, "built in (shipped with qdrift)", namedIn);
            } else {
                Path found = locate(path);
                String sha = null, note = null;
                Long size = null;
                if (found == null) {
                    sha = recordedSha256;
                    note = recordedSha256 == null ? "not found here: no hash" : "not found here: hash as the run recorded it";
                } else {
                    try {
                        sha = RunInputs.hash(found);   // the hash a drift run records, so the two compare
                        size = Files.size(found);
                        if (changed(sha, recordedSha256)) note = changedNote(recordedSha256);
                    } catch (IOException | QdriftException e) {
                        note = "cannot read: " + e.getMessage();
                    }
                }
                ref = new FileRef(path, role, found == null ? null : found.toString(), sha, size, note, namedIn);
            }
            files.put(key, ref);
            return ref;
        }

        private static boolean changed(String sha, String recordedSha256) {
            return sha != null && recordedSha256 != null && !recordedSha256.equals(sha);
        }

        private static String changedNote(String recordedSha256) {
            return "changed since the run, which recorded SHA-256 " + recordedSha256;
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
