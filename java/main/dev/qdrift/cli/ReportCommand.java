package dev.qdrift.cli;

import dev.qdrift.report.Report;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = "One self-contained HTML report (no network needed to view it) over every qdrift result JSON in DIR and its "
                + "subdirectories, recognized by content: provenance with file hashes, verification, FP32 baseline, accuracy per "
                + "quantization scheme, activation outliers, attribution drift, latency and memory. Writes the data behind it beside "
                + "the HTML (report.html -> report.json).")
final class ReportCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "DIR", description = "directory with result JSON files")
    Path dir;

    @Option(names = "--out", paramLabel = "FILE", description = "the HTML file (default: DIR/report.html)")
    Path out;

    @Spec CommandSpec spec;

    @Override
    public Integer call() {
        Path html = out != null ? out : dir.resolve("report.html");
        Report.Written w = Report.write(dir, html, version());
        System.out.printf("wrote      %s (%d sections, %d charts) and %s%n", w.html(), w.sections(), w.figures(), w.json());
        for (String s : w.notShown()) System.out.println("not shown  " + s);
        return 0;
    }

    /** "qdrift 0.1.0", from the root command's version, which is where the CLI declares it. */
    private String version() {
        String[] v = spec.root().version();
        return v.length > 0 ? v[0] : "qdrift";
    }
}
