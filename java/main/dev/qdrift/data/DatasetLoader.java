package dev.qdrift.data;

import dev.qdrift.QdriftException;
import dev.qdrift.data.Delimited.Field;
import dev.qdrift.data.Delimited.Row;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Reads labelled text data sets: the GLUE / AG News files as distributed, generic TSV/CSV files with
 * a header, and the built-in demo set. Every problem with the input is a {@link QdriftException}
 * whose message starts with {@code file:line:} (and the column where it is known), so the user can
 * go straight to the fault.
 */
public final class DatasetLoader {
    /** The built-in demo set: 320 hand-written sentiment sentences, SST-2 format. */
    public static final String DEMO = "builtin:demo";

    private static final String BUILTIN_PREFIX = "builtin:";
    private static final String DEMO_RESOURCE = "/dev/qdrift/data/demo-sentiment.tsv";

    /** AG News encodes line breaks as backslashes ("second\team", "\\"); a run of them is one break. */
    private static final Pattern BACKSLASHES = Pattern.compile("\\\\+");
    private static final Pattern INTEGER = Pattern.compile("-?[0-9]+");

    private static final LabelSpec SST2_LABELS = new LabelSpec(
            List.of("negative", "positive"), Map.of("0", 0, "1", 1), "0 (negative) or 1 (positive)");
    private static final LabelSpec AGNEWS_LABELS = new LabelSpec(
            List.of("World", "Sports", "Business", "Sci/Tech"),
            Map.of("1", 0, "2", 1, "3", 2, "4", 3),
            "1 (World), 2 (Sports), 3 (Business) or 4 (Sci/Tech)");
    private static final LabelSpec QNLI_LABELS = new LabelSpec(
            List.of("entailment", "not_entailment"),
            Map.of("entailment", 0, "not_entailment", 1), "entailment or not_entailment");

    /** Fixed label vocabulary of a known task: raw label text → class index. */
    private record LabelSpec(List<String> names, Map<String, Integer> index, String expected) {}

    private DatasetLoader() {}

    /**
     * Loads a data set.
     *
     * @param location a file path, or {@code "builtin:demo"} (always read as SST-2 format, whatever
     *     {@code task} says — it is a sentiment set with an SST-2 header)
     * @param task     the file format; see {@link Task}
     * @throws QdriftException if the file is missing, unreadable, not UTF-8, or malformed
     */
    public static Dataset load(String location, Task task) {
        Objects.requireNonNull(task, "task");
        if (location == null || location.isBlank()) {
            throw new QdriftException("no data location given; use a file path or " + DEMO);
        }
        if (location.startsWith(BUILTIN_PREFIX)) return loadBuiltin(location);

        Path path;
        try {
            path = Path.of(location);
        } catch (InvalidPathException e) {
            throw new QdriftException(location + ": not a valid file path: " + e.getReason(), e);
        }
        if (!Files.exists(path)) throw new QdriftException(location + ": no such file");
        if (Files.isDirectory(path)) {
            throw new QdriftException(location + ": is a directory; expected a data file for task " + task.cliName());
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new QdriftException(location + ": cannot read: " + e.getMessage(), e);
        }
        return parse(bytes, location, task.cliName() + ":" + path.getFileName(), task);
    }

    private static Dataset loadBuiltin(String location) {
        if (!location.equals(DEMO)) {
            throw new QdriftException("unknown built-in data set '" + location + "'; available: " + DEMO);
        }
        try (InputStream in = DatasetLoader.class.getResourceAsStream(DEMO_RESOURCE)) {
            if (in == null) throw new IllegalStateException("resource " + DEMO_RESOURCE + " missing from the build");
            return parse(in.readAllBytes(), DEMO, "demo", Task.SST2);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource " + DEMO_RESOURCE, e);
        }
    }

    /** Parses file contents; {@code source} prefixes every error message. */
    static Dataset parse(byte[] bytes, String source, String name, Task task) {
        String text = Utf8.decode(bytes, source);
        List<Row> rows = (task == Task.AGNEWS || task == Task.CSV) ? Delimited.csv(text, source) : Delimited.tsv(text);
        if (rows.isEmpty()) {
            throw Delimited.error(source, 1, "file is empty; expected a header line, then one example per line");
        }
        Row header = rows.getFirst();
        Columns columns = switch (task) {
            case SST2 -> new Columns(true,
                    require(header, source, "sentence"), -1, -1, require(header, source, "label"), SST2_LABELS);
            case QNLI -> new Columns(true,
                    require(header, source, "question"), require(header, source, "sentence"), -1,
                    require(header, source, "label"), QNLI_LABELS);
            case AGNEWS -> agNewsColumns(header, source);
            case TSV, CSV -> new Columns(true,
                    require(header, source, "sentence", "text", "sentence1"),
                    find(header, "sentence2", "text_pair"), -1,
                    require(header, source, "label"), null);
        };

        List<Row> data = columns.hasHeader() ? rows.subList(1, rows.size()) : rows;
        if (data.isEmpty()) {
            throw Delimited.error(source, header.line(), "only a header line, no examples");
        }
        int expectedFields = header.fields().size();

        List<String> texts = new ArrayList<>(data.size());
        List<String> pairs = new ArrayList<>(data.size());
        List<Field> rawLabels = new ArrayList<>(data.size());
        for (Row row : data) {
            int found = row.fields().size();
            // Both directions are errors: too few means a lost separator, too many usually a stray
            // tab or comma inside the text, which would otherwise shift the label column silently.
            if (found != expectedFields) {
                throw Delimited.error(source, row.line(), "row has " + found + " field" + (found == 1 ? "" : "s")
                        + " but " + (columns.hasHeader() ? "the header has " : "expected ") + expectedFields
                        + " (" + String.join(", ", headerNames(header, columns)) + ")");
            }
            String t;
            if (task == Task.AGNEWS) {
                // AG News: title + ". " + description, as is usual for this data set.
                t = agNewsText(row, columns.text(), source, "title") + ". "
                        + agNewsText(row, columns.extra(), source, "description");
            } else {
                t = textField(row, columns.text(), source, header, columns);
            }
            texts.add(t);
            pairs.add(columns.pair() >= 0 ? textField(row, columns.pair(), source, header, columns) : null);
            Field label = row.fields().get(columns.label());
            if (label.value().isBlank()) throw Delimited.error(source, label, "empty label");
            rawLabels.add(label);
        }

        List<String> labelNames;
        int[] labels;
        if (columns.labels() != null) {
            labelNames = columns.labels().names();
            labels = fixedLabels(rawLabels, columns.labels(), task, source);
        } else {
            GenericLabels generic = genericLabels(rawLabels, source);
            labelNames = generic.names();
            labels = generic.labels();
        }
        List<Example> examples = new ArrayList<>(data.size());
        for (int i = 0; i < data.size(); i++) examples.add(new Example(texts.get(i), pairs.get(i), labels[i]));
        return new Dataset(name, source, labelNames, examples);
    }

    /**
     * Where the columns are. {@code extra} is AG News' description column; {@code labels} is null
     * for generic files, whose label names come from the data.
     */
    private record Columns(boolean hasHeader, int text, int pair, int extra, int label, LabelSpec labels) {}

    /** The copy here has a {@code label,title,description} header; the original release has none. */
    private static Columns agNewsColumns(Row first, String source) {
        if (find(first, "label") < 0 && !first.fields().isEmpty()
                && AGNEWS_LABELS.index().containsKey(first.fields().getFirst().value().strip())) {
            return new Columns(false, 1, -1, 2, 0, AGNEWS_LABELS);
        }
        return new Columns(true, require(first, source, "title"), -1, require(first, source, "description"),
                require(first, source, "label"), AGNEWS_LABELS);
    }

    private static String agNewsText(Row row, int column, String source, String what) {
        Field f = row.fields().get(column);
        String cleaned = BACKSLASHES.matcher(f.value()).replaceAll(" ").strip();
        if (cleaned.isEmpty()) throw Delimited.error(source, f, "empty " + what);
        return cleaned;
    }

    private static String textField(Row row, int column, String source, Row header, Columns columns) {
        Field f = row.fields().get(column);
        // Stripping is safe for tokenizers and removes SST-2's trailing space.
        String value = f.value().strip();
        if (value.isEmpty()) {
            throw Delimited.error(source, f, "empty text in column '" + headerNames(header, columns).get(column) + "'");
        }
        return value;
    }

    private static int[] fixedLabels(List<Field> raw, LabelSpec spec, Task task, String source) {
        int[] labels = new int[raw.size()];
        for (int i = 0; i < raw.size(); i++) {
            Field f = raw.get(i);
            Integer index = spec.index().get(f.value().strip());
            if (index == null) {
                throw Delimited.error(source, f, "label '" + f.value().strip() + "' is not valid for "
                        + task.cliName() + "; expected " + spec.expected());
            }
            labels[i] = index;
        }
        return labels;
    }

    private record GenericLabels(List<String> names, int[] labels) {}

    /**
     * Generic files: labels are either all integers 0..K-1 (names "0".."K-1") or all free-form
     * strings (names sorted, so the mapping does not depend on row order). A mix is an error rather
     * than a guess: "maybe" among 0/1 labels is far more likely a typo than a third class.
     */
    private static GenericLabels genericLabels(List<Field> raw, String source) {
        Field first = raw.getFirst();
        boolean integers = INTEGER.matcher(first.value().strip()).matches();
        for (Field f : raw) {
            if (INTEGER.matcher(f.value().strip()).matches() != integers) {
                throw Delimited.error(source, f, "label '" + f.value().strip() + "' is "
                        + (integers ? "not an integer" : "an integer") + " but the first label (line "
                        + first.line() + ") is '" + first.value().strip()
                        + "'; use integers 0..K-1 or names for all labels");
            }
        }
        int[] labels = new int[raw.size()];
        List<String> names = new ArrayList<>();
        if (integers) {
            int max = -1;
            Field maxAt = first;
            for (int i = 0; i < raw.size(); i++) {
                Field f = raw.get(i);
                String s = f.value().strip();
                // More than 6 digits cannot be a class index of a text classifier; it is a wrong column.
                if (s.startsWith("-") || s.length() > 6) {
                    throw Delimited.error(source, f, "label " + s + " is out of range; integer labels must be 0..K-1");
                }
                labels[i] = Integer.parseInt(s);
                if (labels[i] > max) {
                    max = labels[i];
                    maxAt = f;
                }
            }
            boolean[] seen = new boolean[max + 1];
            for (int label : labels) seen[label] = true;
            List<String> missing = new ArrayList<>();
            for (int c = 0; c <= max; c++) if (!seen[c]) missing.add(Integer.toString(c));
            if (!missing.isEmpty()) {
                throw Delimited.error(source, maxAt, "label " + max + " is out of range: integer labels must be 0..K-1"
                        + " with every class present, but " + abbreviate(missing) + " never occur"
                        + (missing.size() == 1 ? "s" : ""));
            }
            for (int c = 0; c <= max; c++) names.add(Integer.toString(c));
        } else {
            TreeSet<String> distinct = new TreeSet<>();
            for (Field f : raw) distinct.add(f.value().strip());
            names.addAll(distinct);
            Map<String, Integer> index = new LinkedHashMap<>();
            for (String s : names) index.put(s, index.size());
            for (int i = 0; i < raw.size(); i++) labels[i] = index.get(raw.get(i).value().strip());
        }
        if (names.size() < 2) {
            throw Delimited.error(source, first, "every example has label '" + names.getFirst()
                    + "'; a classifier needs at least two classes");
        }
        return new GenericLabels(names, labels);
    }

    private static String abbreviate(List<String> items) {
        if (items.size() <= 5) return String.join(", ", items);
        return String.join(", ", items.subList(0, 5)) + " and " + (items.size() - 5) + " more";
    }

    /** Index of the first header field equal to one of {@code names} (case-insensitive), or -1. */
    private static int find(Row header, String... names) {
        for (String name : names) {
            for (int i = 0; i < header.fields().size(); i++) {
                if (header.fields().get(i).value().strip().equalsIgnoreCase(name)) return i;
            }
        }
        return -1;
    }

    private static int require(Row header, String source, String... names) {
        int i = find(header, names);
        if (i >= 0) return i;
        List<String> quoted = new ArrayList<>();
        for (String n : names) quoted.add("'" + n + "'");
        throw Delimited.error(source, header.line(), "missing column " + String.join(" or ", quoted)
                + "; the header line has " + headerNames(header, null) + " (a header line is required)");
    }

    /** Column names for messages; for a headerless AG News file, the names the columns stand for. */
    private static List<String> headerNames(Row header, Columns columns) {
        if (columns != null && !columns.hasHeader()) return List.of("label", "title", "description");
        List<String> names = new ArrayList<>();
        for (Field f : header.fields()) names.add(f.value().strip().toLowerCase(Locale.ROOT));
        return names;
    }
}
