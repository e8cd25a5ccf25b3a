package dev.qdrift.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;
import java.util.Map;

/**
 * The report as data: what {@link HtmlWriter} renders and what report.json holds. Numbers stay numbers
 * here (formatting is the writer's job, by each column's {@link Format}), so report.json can be read
 * back by a script without parsing "12.3%".
 *
 * @param qdriftReport  format version of this document; its presence is how {@link ReportData} knows
 *                      to skip a report.json found in the directory it reads
 * @param dir           the directory read, or the one result file
 * @param notShown      sections left out, each with the reason (no such results in the directory)
 */
public record ReportModel(int qdriftReport, String title, String dir, Provenance provenance, List<ReportData.Input> inputs,
                          List<Section> sections, List<String> notShown) {
    public static final String MARKER = "qdriftReport";
    public static final int VERSION = 1;

    public record Section(String id, String title, List<Block> blocks) {}

    @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
    @JsonSubTypes({@JsonSubTypes.Type(value = Paragraph.class, name = "paragraph"),
            @JsonSubTypes.Type(value = KeyValues.class, name = "keyValues"), @JsonSubTypes.Type(value = Table.class, name = "table"),
            @JsonSubTypes.Type(value = Figure.class, name = "figure"), @JsonSubTypes.Type(value = HeatMaps.class, name = "heatMaps")})
    public sealed interface Block permits Paragraph, KeyValues, Table, Figure, HeatMaps {}

    /** @param tone null, or "pass" / "fail" / "note": how the line is set off */
    public record Paragraph(String text, String tone) implements Block {
        public static Paragraph of(String text) {
            return new Paragraph(text, null);
        }

        public static Paragraph note(String text) {
            return new Paragraph(text, "note");
        }
    }

    public record KeyValues(String title, Map<String, String> entries) implements Block {}

    /** @param rows cells in column order: String, Number or null (shown as "–") */
    public record Table(String id, String title, List<Column> columns, List<List<Object>> rows, String caption) implements Block {}

    public record Column(String name, Format format) {
        public static Column text(String name) {
            return new Column(name, Format.TEXT);
        }
    }

    /** How a column's numbers are written. */
    public enum Format {
        TEXT, INT, FIXED1, FIXED2, FIXED3, FIXED4, PERCENT, SCI, MIB, HASH
    }

    /**
     * A chart: the SVG XChart drew (inline in the HTML, left out of report.json) and the series it was
     * drawn from (in report.json).
     */
    public record Figure(String id, String title, String caption, @JsonIgnore String svg, Map<String, Object> data)
            implements Block {}

    /** Token attributions per precision, side by side, as coloured text (not a chart). */
    public record HeatMaps(String title, String caption, List<DriftData.Example> examples) implements Block {}
}
