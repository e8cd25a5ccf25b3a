package dev.qdrift.data;

import dev.qdrift.QdriftException;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The input formats {@link DatasetLoader} understands, named as on the command line. */
public enum Task {
    /** GLUE SST-2: {@code sentence<TAB>label}, labels 0 = negative, 1 = positive. */
    SST2,
    /** AG News CSV: {@code label,title,description}, labels 1..4 = World, Sports, Business, Sci/Tech. */
    AGNEWS,
    /** GLUE QNLI: {@code index<TAB>question<TAB>sentence<TAB>label}, labels entailment / not_entailment. */
    QNLI,
    /** Any tab-separated file with a header naming a text column and a {@code label} column. */
    TSV,
    /** Any RFC-4180 CSV file with a header naming a text column and a {@code label} column. */
    CSV;

    /** The command-line spelling, e.g. {@code "sst2"}. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses "sst2|agnews|qnli|tsv|csv", ignoring case and surrounding spaces. */
    public static Task parse(String s) {
        if (s != null) {
            String wanted = s.strip();
            for (Task t : values()) {
                if (t.cliName().equalsIgnoreCase(wanted)) return t;
            }
        }
        throw new QdriftException("unknown task '" + s + "'; valid tasks: " + validNames());
    }

    /** "sst2, agnews, qnli, tsv, csv" — for help texts and errors. */
    public static String validNames() {
        return Arrays.stream(values()).map(Task::cliName).collect(Collectors.joining(", "));
    }
}
