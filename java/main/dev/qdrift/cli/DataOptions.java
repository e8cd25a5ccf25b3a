package dev.qdrift.cli;

import dev.qdrift.data.Task;
import dev.qdrift.experiment.DataSelection;
import picocli.CommandLine.Option;

/** --data, --task, --limit, --split, --seed: which examples a command reads. */
public final class DataOptions {
    @Option(names = "--data", defaultValue = "builtin:demo",
            description = "data file, or builtin:demo (320 sentiment sentences shipped with qdrift) (default: ${DEFAULT-VALUE})")
    String data;

    @Option(names = "--task", defaultValue = "sst2", description = "format of --data: sst2, agnews, qnli, tsv or csv (default: ${DEFAULT-VALUE})")
    String task;

    @Option(names = "--limit", description = "use a seeded, class-stratified sample of this many examples")
    Integer limit;

    @Option(names = "--split", description = "train fraction of a seeded stratified train / held-out split, e.g. 0.7")
    Double split;

    @Option(names = "--seed", defaultValue = "13", description = "seed of --limit and --split (default: ${DEFAULT-VALUE})")
    long seed;

    DataSelection selection() {
        return new DataSelection(data, Task.parse(task), limit, split, seed);
    }
}
