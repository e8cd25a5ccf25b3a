package dev.qdrift.experiment;

import java.io.PrintStream;

/**
 * Progress on stderr with a rate: a bar redrawn in place a few times a second on a terminal, plain
 * lines every few seconds when stderr goes to a file or CI log.
 */
public final class Progress {
    private final String label;
    private final long total;
    private final long start = System.nanoTime();
    private final PrintStream out = System.err;
    private long done;
    private long lastDraw;
    private final boolean terminal = System.console() != null;

    public Progress(String label, long total) {
        this.label = label;
        this.total = total;
    }

    public void advance(long n) {
        done += n;
        long now = System.nanoTime();
        long interval = terminal ? 250_000_000L : 5_000_000_000L;
        if (now - lastDraw < interval && done < total) return;
        lastDraw = now;
        double rate = done / Math.max((now - start) / 1e9, 1e-9);
        int width = 30, filled = total == 0 ? width : (int) (width * done / total);
        String line = String.format("%-14s [%s%s] %d/%d  %.1f ex/s", label, "#".repeat(filled), " ".repeat(width - filled),
                done, total, rate);
        if (terminal) out.print("\r" + line + (done >= total ? "\n" : ""));
        else out.println(line);
    }
}
