package dev.qdrift.cli;

import dev.qdrift.QdriftException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * --report, shared by the analysis commands: once a command has written its results, the report over
 * them, written by the same code as {@code qdrift report PATH} ({@link ReportCommand#write}).
 */
final class ReportOption {
    @Option(names = "--report",
            description = "after writing the results, write the HTML report over them, as qdrift report does, and print where it "
                    + "is. With --out DIR: DIR/report.html, over every result in DIR. With --json FILE: over FILE alone, beside it "
                    + "(q.json -> q.report.html); --json is then required. The JSON behind the report goes beside the HTML.")
    boolean enabled;

    /** Fails before any work is done when the report would have nothing to read (--json not given). */
    void requireOutput(Path output, String option) {
        if (enabled && output == null)
            throw new QdriftException("--report needs " + option + ": the report is written over the results saved there");
    }

    /** @param output what the command wrote: its --out directory or its --json file */
    void writeOver(Path output) {
        if (enabled) ReportCommand.write(output, null);
    }
}
