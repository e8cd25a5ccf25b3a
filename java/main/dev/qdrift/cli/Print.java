package dev.qdrift.cli;

import dev.qdrift.metrics.ClassificationReport;
import java.util.List;

/** Human-readable tables for the terminal. */
final class Print {
    static void classification(ClassificationReport r, List<String> labels) {
        System.out.printf("accuracy   %.4f  (95%% bootstrap CI %.4f – %.4f, n = %d)%n", r.accuracy(), r.ciLow(), r.ciHigh(), r.n());
        int w = Math.max(10, labels.stream().mapToInt(String::length).max().orElse(0) + 2);
        System.out.printf("%-" + w + "s %8s %8s", "class", "n", "acc");
        for (String l : labels) System.out.printf(" %" + w + "s", "→" + l);
        if (r.meanLogits() != null) System.out.printf("   mean logits");
        System.out.println();
        for (int c = 0; c < labels.size(); c++) {
            int n = 0;
            for (int v : r.confusion()[c]) n += v;
            System.out.printf("%-" + w + "s %8d %8.4f", labels.get(c), n, r.perClassAccuracy()[c]);
            for (int p = 0; p < labels.size(); p++) System.out.printf(" %" + w + "d", r.confusion()[c][p]);
            if (c == 0 && r.meanLogits() != null) System.out.printf("   %s", java.util.Arrays.toString(r.meanLogits()));
            System.out.println();
        }
    }

    private Print() {}
}
