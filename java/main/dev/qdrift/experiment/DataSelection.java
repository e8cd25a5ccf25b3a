package dev.qdrift.experiment;

import dev.qdrift.data.Dataset;
import dev.qdrift.data.DatasetLoader;
import dev.qdrift.data.Split;
import dev.qdrift.data.Splits;
import dev.qdrift.data.Task;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Which examples a run uses: a data file, optionally a seeded stratified sample of it ({@code limit}),
 * optionally split into train / held-out. The same selection always gives the same examples, and it
 * is written into heads and results so a later run can rebuild it.
 */
public record DataSelection(String location, Task task, Integer limit, Double trainFraction, long seed) {

    public Dataset all() {
        Dataset d = DatasetLoader.load(location, task);
        return limit == null || limit >= d.size() ? d : d.sample(limit, seed);
    }

    /** The train / held-out split, or null when the whole selection is used. */
    public Split split() {
        return trainFraction == null ? null : Splits.stratified(all(), trainFraction, seed);
    }

    /** The examples to evaluate on: the held-out side when split, else everything. */
    public Dataset evaluationSet() {
        Split s = split();
        return s == null ? all() : s.test();
    }

    public Map<String, String> describe() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("data", location);
        m.put("task", task.cliName());
        m.put("seed", Long.toString(seed));
        if (limit != null) m.put("limit", limit.toString());
        if (trainFraction != null) m.put("split", trainFraction.toString());
        return m;
    }

    /** The selection a head was trained on, if it recorded one for this data file and task. */
    public static DataSelection fromHead(Map<String, String> meta, String location, Task task) {
        if (!location.equals(meta.get("data")) || !task.cliName().equals(meta.get("task")) || meta.get("split") == null)
            return null;
        return new DataSelection(location, task, meta.get("limit") == null ? null : Integer.valueOf(meta.get("limit")),
                Double.valueOf(meta.get("split")), Long.parseLong(meta.get("seed")));
    }
}
