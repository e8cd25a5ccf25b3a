package dev.qdrift.cli;

import dev.qdrift.report.Report;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = "One self-contained HTML report (no network needed to view it) over every qdrift result JSON in DIR and its "
                + "subdirectories, recognized by content, or over one result FILE: provenance with file hashes and versions, "
                + "verification, FP32 baseline, accuracy per quantization scheme, activation outliers, attribution drift, latency and "
                + "memory. Writes the data behind it beside the HTML (report.html -> report.json).")
final class ReportCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "DIR|FILE", description = "a directory with result JSON files, or one result JSON file")
    Path input;

    @Option(names = "--out", paramLabel = "FILE", description = "the HTML file (default: DIR/report.html, or FILE's name with .report.html)")
    Path out;

    @Override
    public Integer call() {
        write(input, out);
        return 0;
    }

    /**
     * Writes the report over input and says where: {@code qdrift report} and every command's --report.
     *
     * @param html null for the default beside input ({@link Report#defaultHtml})
     */
    static Report.Written write(Path input, Path html) {
        Report.Written w = Report.write(input, html != null ? html : Report.defaultHtml(input), Main.VERSION);
        System.out.printf("report     %s (%d sections, %d charts) and %s%n", w.html(), w.sections(), w.figures(), w.json());
        for (String s : w.notShown()) System.out.println("not shown  " + s);
        return w;
    }
}
