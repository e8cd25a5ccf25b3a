package dev.qdrift.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qdrift.QdriftException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetLoaderTest {
    private static final Path DATA = Path.of("/work/shared/data");

    @TempDir
    Path dir;

    // ---- built-in demo ------------------------------------------------------------------------

    @Test
    void demoHas320BalancedSentences() {
        Dataset d = DatasetLoader.load(DatasetLoader.DEMO, Task.SST2);
        assertEquals(320, d.size());
        assertEquals(List.of("negative", "positive"), d.labelNames());
        assertArrayEquals(new int[] {160, 160}, d.classCounts());
        assertEquals("builtin:demo", d.source());
        assertFalse(d.isPair());
        Set<String> distinct = new HashSet<>();
        for (Example e : d.examples()) {
            int words = e.text().split("\\s+").length;
            assertTrue(words >= 4 && words <= 16, "4-16 words: " + e.text());
            assertNull(e.textPair());
            distinct.add(e.text());
        }
        assertEquals(320, distinct.size(), "no duplicate sentences");
        // Mixed order: the first 20 rows hold both classes.
        int[] firstTwenty = d.limit(20).classCounts();
        assertTrue(firstTwenty[0] > 0 && firstTwenty[1] > 0);
    }

    @Test
    void demoIgnoresTaskAndUnknownBuiltinIsAnError() {
        assertEquals(320, DatasetLoader.load("builtin:demo", Task.TSV).size());
        QdriftException e = assertThrows(QdriftException.class, () -> DatasetLoader.load("builtin:nope", Task.SST2));
        assertTrue(e.getMessage().contains("builtin:demo"), e.getMessage());
    }

    // ---- task names ---------------------------------------------------------------------------

    @Test
    void taskParsesCliNamesIgnoringCase() {
        assertEquals(Task.SST2, Task.parse("sst2"));
        assertEquals(Task.AGNEWS, Task.parse("AGNews"));
        assertEquals(Task.QNLI, Task.parse(" QNLI "));
        assertEquals(Task.TSV, Task.parse("tsv"));
        assertEquals(Task.CSV, Task.parse("Csv"));
        QdriftException e = assertThrows(QdriftException.class, () -> Task.parse("mnli"));
        assertTrue(e.getMessage().contains("mnli") && e.getMessage().contains("sst2, agnews, qnli, tsv, csv"),
                e.getMessage());
        assertThrows(QdriftException.class, () -> Task.parse(null));
    }

    // ---- real data (skipped where /work/shared/data is absent) --------------------------------

    @Test
    void realSst2Dev() {
        Path p = DATA.resolve("sst2/dev.tsv");
        assumeTrue(Files.exists(p), "shared data not present: " + p);
        Dataset d = DatasetLoader.load(p.toString(), Task.SST2);
        assertEquals(872, d.size());
        assertArrayEquals(new int[] {428, 444}, d.classCounts());
        assertEquals("it 's a charming and often affecting journey .", d.examples().getFirst().text());
        assertEquals(1, d.examples().getFirst().label());
    }

    @Test
    void realSst2Train() {
        Path p = DATA.resolve("sst2/train.tsv");
        assumeTrue(Files.exists(p), "shared data not present: " + p);
        assertEquals(67_349, DatasetLoader.load(p.toString(), Task.SST2).size());
    }

    @Test
    void realAgNewsTest() {
        Path p = DATA.resolve("agnews/test.csv");
        assumeTrue(Files.exists(p), "shared data not present: " + p);
        Dataset d = DatasetLoader.load(p.toString(), Task.AGNEWS);
        assertEquals(7600, d.size());
        assertEquals(List.of("World", "Sports", "Business", "Sci/Tech"), d.labelNames());
        assertArrayEquals(new int[] {1900, 1900, 1900, 1900}, d.classCounts());
        Example first = d.examples().getFirst();
        assertEquals(2, first.label(), "file label 3 = Business");
        assertTrue(first.text().startsWith("Fears for T N pension after talks. Unions representing"), first.text());
        for (Example e : d.examples()) assertFalse(e.text().contains("\\"), e.text());
        // Row 2's description is quoted and holds "second\team": the backslash became a space.
        assertTrue(d.examples().get(1).text().contains("A second team of rocketeers"), d.examples().get(1).text());
    }

    @Test
    void realQnliDev() {
        Path p = DATA.resolve("qnli/dev.tsv");
        assumeTrue(Files.exists(p), "shared data not present: " + p);
        Dataset d = DatasetLoader.load(p.toString(), Task.QNLI);
        assertEquals(5463, d.size());
        assertEquals(List.of("entailment", "not_entailment"), d.labelNames());
        assertArrayEquals(new int[] {2702, 2761}, d.classCounts(), "entailment 2702, not_entailment 2761");
        Example first = d.examples().getFirst();
        assertEquals("What came into force after the new constitution was herald?", first.text());
        assertTrue(first.textPair().startsWith("As of that day"), first.textPair());
        assertEquals(0, first.label());
        assertTrue(d.isPair());
    }

    // ---- well-formed small files --------------------------------------------------------------

    @Test
    void csvQuotingDoubledQuotesCommasNewlinesAndCrlf() throws IOException {
        Path p = write("q.csv", "\uFEFFtext,label\r\n" // byte-order mark as Excel writes it
                + "\"hello, world\",pos\r\n"
                + "\"she said \"\"hi\"\"\",neg\r\n"
                + "\"two\r\nlines\",pos\r\n"
                + "plain \"inner\" quote,neg"); // no final line break
        Dataset d = DatasetLoader.load(p.toString(), Task.CSV);
        assertEquals(List.of("neg", "pos"), d.labelNames(), "string labels: sorted distinct");
        assertEquals(4, d.size());
        assertEquals("hello, world", d.examples().get(0).text());
        assertEquals(1, d.examples().get(0).label());
        assertEquals("she said \"hi\"", d.examples().get(1).text());
        assertEquals("two\r\nlines", d.examples().get(2).text());
        assertEquals("plain \"inner\" quote", d.examples().get(3).text());
    }

    @Test
    void csvErrorLineCountsLinesInsideQuotedFields() throws IOException {
        Path p = write("multi.csv", "text,label\n\"a\nb\nc\",0\nok,7\n");
        QdriftException e = assertThrows(QdriftException.class, () -> DatasetLoader.load(p.toString(), Task.CSV));
        assertTrue(e.getMessage().contains("multi.csv:5:"), e.getMessage());
    }

    @Test
    void tsvTreatsQuotesAsText() throws IOException {
        Path p = write("pairs.tsv", "index\tquestion\tsentence\tlabel\n"
                + "0\tWhat is \"x?\tIt is \"y.\tentailment\n"
                + "1\tWhy?\tBecause\" so.\tnot_entailment\n");
        Dataset d = DatasetLoader.load(p.toString(), Task.QNLI);
        assertEquals("What is \"x?", d.examples().get(0).text());
        assertEquals("It is \"y.", d.examples().get(0).textPair());
        assertEquals(1, d.examples().get(1).label());
    }

    @Test
    void genericTsvWithPairAndIntegerLabels() throws IOException {
        Path p = write("g.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t2\n2\tc\td\t0\n3\te\tf\t1\n");
        Dataset d = DatasetLoader.load(p.toString(), Task.TSV);
        assertEquals(List.of("0", "1", "2"), d.labelNames());
        assertEquals(new Example("a", "b", 2), d.examples().getFirst());
    }

    @Test
    void agNewsBackslashesAndHeaderlessOriginal() throws IOException {
        Path p = write("ag.csv", "\"3\",\"Title\\\\\",\"one\\two \\\\three\"\n\"1\",\"T\",\"d\"\n");
        Dataset d = DatasetLoader.load(p.toString(), Task.AGNEWS);
        assertEquals(2, d.size(), "no header: both lines are examples");
        assertEquals("Title. one two  three", d.examples().getFirst().text());
        assertEquals(2, d.examples().getFirst().label());
        assertEquals(0, d.examples().get(1).label());
    }

    // ---- bad inputs: each message names the file and the line ---------------------------------

    @Test
    void missingFile() {
        Path p = dir.resolve("nothere.tsv");
        QdriftException e = assertThrows(QdriftException.class, () -> DatasetLoader.load(p.toString(), Task.SST2));
        assertTrue(e.getMessage().contains("nothere.tsv") && e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void directoryInsteadOfFile() throws IOException {
        Path p = Files.createDirectory(dir.resolve("adir"));
        QdriftException e = assertThrows(QdriftException.class, () -> DatasetLoader.load(p.toString(), Task.SST2));
        assertTrue(e.getMessage().contains("adir") && e.getMessage().contains("directory"), e.getMessage());
    }

    @Test
    void emptyFile() throws IOException {
        expectError(write("empty.tsv", ""), Task.SST2, 1, "empty");
    }

    @Test
    void blankLinesOnlyIsEmpty() throws IOException {
        expectError(write("blank.csv", "\n\r\n\n"), Task.CSV, 1, "empty");
    }

    @Test
    void headerOnly() throws IOException {
        expectError(write("header.tsv", "sentence\tlabel\n"), Task.SST2, 1, "no examples");
    }

    @Test
    void invalidUtf8NamesLineAndColumn() throws IOException {
        byte[] good = "sentence\tlabel\nfine\t1\nca".getBytes(StandardCharsets.UTF_8);
        byte[] bad = {(byte) 0xC3, (byte) 0x28}; // 0xC3 must be followed by a continuation byte
        byte[] rest = "fe\t0\n".getBytes(StandardCharsets.UTF_8);
        Path p = dir.resolve("latin1.tsv");
        Files.write(p, concat(good, bad, rest));
        QdriftException e = expectError(p, Task.SST2, 3, "UTF-8");
        assertTrue(e.getMessage().contains("latin1.tsv:3:3:"), e.getMessage());
    }

    @Test
    void truncatedUtf8AtEndOfFile() throws IOException {
        Path p = dir.resolve("cut.tsv");
        Files.write(p, concat("sentence\tlabel\ncaf".getBytes(StandardCharsets.UTF_8), new byte[] {(byte) 0xC3}));
        expectError(p, Task.SST2, 2, "UTF-8");
    }

    @Test
    void missingColumnsNameExpectedAndFound() throws IOException {
        QdriftException e = expectError(write("cols.tsv", "review\tscore\ngood\t1\n"), Task.SST2, 1, "'sentence'");
        assertTrue(e.getMessage().contains("review") && e.getMessage().contains("score"), e.getMessage());
        QdriftException g = expectError(write("cols2.csv", "body,label\nx,1\n"), Task.CSV, 1, "'text'");
        assertTrue(g.getMessage().contains("'sentence'") && g.getMessage().contains("body"), g.getMessage());
    }

    @Test
    void rowWithTooFewFields() throws IOException {
        expectError(write("few.tsv", "sentence\tlabel\ngood\t1\njust text\n"), Task.SST2, 3, "1 field");
        expectError(write("few.csv", "label,title,description\n1,a,b\n2,only title\n"), Task.AGNEWS, 3, "2 fields");
    }

    @Test
    void rowWithTooManyFields() throws IOException {
        expectError(write("many.tsv", "sentence\tlabel\ngood\t1\nstray\ttab\t0\n"), Task.SST2, 3, "3 fields");
    }

    @Test
    void sst2LabelOutOfRange() throws IOException {
        QdriftException e = expectError(write("sst.tsv", "sentence\tlabel\na\t0\nb\t1\nc\t2\n"), Task.SST2, 4, "'2'");
        assertTrue(e.getMessage().contains("sst.tsv:4:3:"), "column of the label: " + e.getMessage());
    }

    @Test
    void sst2LabelNotANumber() throws IOException {
        expectError(write("sstx.tsv", "sentence\tlabel\na\tpositive\n"), Task.SST2, 2, "'positive'");
    }

    @Test
    void agNewsLabelOutOfRange() throws IOException {
        expectError(write("ag5.csv", "label,title,description\n1,a,b\n5,\"c, d\",e\n"), Task.AGNEWS, 3, "'5'");
    }

    @Test
    void qnliLabelNotAllowed() throws IOException {
        expectError(write("q.tsv", "index\tquestion\tsentence\tlabel\n0\tq\ts\tentailment\n1\tq\ts\tmaybe\n"),
                Task.QNLI, 3, "'maybe'");
    }

    @Test
    void genericMixedLabels() throws IOException {
        expectError(write("mix.tsv", "text\tlabel\na\t0\nb\t1\nc\tmaybe\n"), Task.TSV, 4, "not an integer");
    }

    @Test
    void genericIntegerLabelsWithGap() throws IOException {
        expectError(write("gap.tsv", "text\tlabel\na\t0\nb\t1\nc\t5\nd\t1\n"), Task.TSV, 4, "2, 3, 4 never occur");
    }

    @Test
    void genericNegativeLabel() throws IOException {
        expectError(write("neg.csv", "text,label\na,1\nb,-1\n"), Task.CSV, 3, "out of range");
    }

    @Test
    void genericSingleClass() throws IOException {
        expectError(write("one.tsv", "text\tlabel\na\tx\nb\tx\n"), Task.TSV, 2, "two classes");
    }

    @Test
    void emptyTextField() throws IOException {
        expectError(write("blanktext.tsv", "sentence\tlabel\ngood\t1\n   \t0\n"), Task.SST2, 3, "empty text");
        expectError(write("blankpair.tsv", "index\tquestion\tsentence\tlabel\n0\tq?\t\tentailment\n"),
                Task.QNLI, 2, "empty text in column 'sentence'");
        expectError(write("blankag.csv", "label,title,description\n1,t,\"\\\\\"\n"), Task.AGNEWS, 2, "empty description");
    }

    @Test
    void emptyLabelField() throws IOException {
        expectError(write("nolabel.csv", "text,label\nfine,\n"), Task.CSV, 2, "empty label");
    }

    @Test
    void unclosedQuoteReportsWhereItOpenedWithoutHanging() throws IOException {
        StringBuilder csv = new StringBuilder("text,label\nok,1\n\"never closed,0\n");
        for (int i = 0; i < 10_000; i++) csv.append("more text,").append(i % 2).append('\n');
        Path p = write("open.csv", csv.toString());
        QdriftException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(QdriftException.class, () -> DatasetLoader.load(p.toString(), Task.CSV)));
        assertTrue(e.getMessage().contains("open.csv:3:1:") && e.getMessage().contains("never closed"), e.getMessage());
    }

    @Test
    void textAfterClosingQuote() throws IOException {
        QdriftException e = expectError(write("after.csv", "text,label\n\"quoted\"tail,1\n"), Task.CSV, 2, "closing quote");
        assertTrue(e.getMessage().contains("after.csv:2:9:"), e.getMessage());
    }

    // ---- helpers ------------------------------------------------------------------------------

    private Path write(String name, String content) throws IOException {
        return Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
    }

    /** Loads {@code p} expecting an error that names the file, the line and {@code fragment}. */
    private static QdriftException expectError(Path p, Task task, int line, String fragment) {
        QdriftException e = assertThrows(QdriftException.class, () -> DatasetLoader.load(p.toString(), task));
        String m = e.getMessage();
        assertTrue(m.contains(p.getFileName() + ":" + line + ":"), "file and line " + line + " in: " + m);
        assertTrue(m.contains(fragment), "'" + fragment + "' in: " + m);
        return e;
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] b : parts) n += b.length;
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] b : parts) {
            System.arraycopy(b, 0, out, at, b.length);
            at += b.length;
        }
        return out;
    }

    @Test
    void limitIsFilePrefix() {
        Dataset d = DatasetLoader.load(DatasetLoader.DEMO, Task.SST2);
        assertEquals(d.examples().subList(0, 7), d.limit(7).examples());
        assertSame(d, d.limit(10_000));
        assertEquals(0, d.limit(0).size());
    }
}
