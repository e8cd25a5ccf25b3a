package dev.qdrift.data;

import dev.qdrift.QdriftException;
import java.util.ArrayList;
import java.util.List;

/**
 * Splits text into rows of fields, remembering where each field starts so that later checks (bad
 * label, empty text) can point at a line and column. Blank lines are skipped.
 */
final class Delimited {
    private Delimited() {}

    /** One field and where it starts (1-based line and column). */
    record Field(String value, int line, int column) {}

    /** One record; {@code line} is where it starts (a quoted CSV field may continue on later lines). */
    record Row(int line, List<Field> fields) {}

    /**
     * Tab-separated: one row per line, fields split on every tab. Quotes are ordinary characters —
     * GLUE TSVs (QNLI in particular) hold unbalanced quotes inside text and are not quoted.
     * CRLF and LF line ends are both accepted.
     */
    static List<Row> tsv(String text) {
        List<Row> rows = new ArrayList<>();
        int line = 0;
        int start = 0;
        while (start < text.length()) {
            int newline = text.indexOf('\n', start);
            int end = newline < 0 ? text.length() : newline;
            line++;
            int contentEnd = end > start && text.charAt(end - 1) == '\r' ? end - 1 : end;
            if (contentEnd > start) {
                List<Field> fields = new ArrayList<>();
                int fieldStart = start;
                while (true) {
                    int tab = text.indexOf('\t', fieldStart);
                    int fieldEnd = tab < 0 || tab > contentEnd ? contentEnd : tab;
                    fields.add(new Field(text.substring(fieldStart, fieldEnd), line, fieldStart - start + 1));
                    if (fieldEnd == contentEnd) break;
                    fieldStart = fieldEnd + 1;
                }
                rows.add(new Row(line, fields));
            }
            start = end + 1;
        }
        return rows;
    }

    /**
     * RFC 4180 CSV: comma-separated; a field may be enclosed in double quotes, and then may contain
     * commas, line breaks and doubled quotes ({@code ""} = one quote). CRLF or LF line ends. A quote
     * inside an unquoted field is kept as a literal character (as most CSV writers expect).
     *
     * @throws QdriftException for a quote that is never closed (pointing at where it opened) or
     *     text right after a closing quote
     */
    static List<Row> csv(String text, String source) {
        List<Row> rows = new ArrayList<>();
        int n = text.length();
        int pos = 0;
        int line = 1;
        int lineStart = 0; // offset of the current line's first char, for columns
        while (pos < n) {
            int lineEnd = lineBreakLength(text, pos);
            if (lineEnd > 0) { // blank line
                pos += lineEnd;
                line++;
                lineStart = pos;
                continue;
            }
            int rowLine = line;
            List<Field> fields = new ArrayList<>();
            while (true) {
                int fieldLine = line;
                int fieldColumn = pos - lineStart + 1;
                StringBuilder value = new StringBuilder();
                if (pos < n && text.charAt(pos) == '"') {
                    pos++;
                    while (true) {
                        // Reaching the end inside quotes must be an error, not a silent swallow of
                        // the rest of the file: say where the quote opened, which is what to fix.
                        if (pos >= n) {
                            throw error(source, fieldLine, fieldColumn,
                                    "quote opened here is never closed (reached end of file)");
                        }
                        char c = text.charAt(pos);
                        if (c == '"') {
                            if (pos + 1 < n && text.charAt(pos + 1) == '"') {
                                value.append('"');
                                pos += 2;
                            } else {
                                pos++;
                                break;
                            }
                        } else {
                            value.append(c);
                            pos++;
                            if (c == '\n') {
                                line++;
                                lineStart = pos;
                            }
                        }
                    }
                    if (pos < n && text.charAt(pos) != ',' && lineBreakLength(text, pos) == 0) {
                        throw error(source, line, pos - lineStart + 1,
                                "unexpected text after the closing quote of the field opened at line "
                                        + fieldLine + ", column " + fieldColumn
                                        + " (a quote inside a quoted field must be doubled: \"\")");
                    }
                } else {
                    while (pos < n && text.charAt(pos) != ',' && lineBreakLength(text, pos) == 0) {
                        value.append(text.charAt(pos));
                        pos++;
                    }
                }
                fields.add(new Field(value.toString(), fieldLine, fieldColumn));
                if (pos < n && text.charAt(pos) == ',') {
                    pos++;
                    continue;
                }
                // End of record: at a line break or at the end of the text.
                if (pos < n) {
                    pos += lineBreakLength(text, pos);
                    line++;
                    lineStart = pos;
                }
                break;
            }
            rows.add(new Row(rowLine, fields));
        }
        return rows;
    }

    /** 2 for CRLF, 1 for LF, 0 if no line break starts at {@code pos}. A lone CR is plain text. */
    private static int lineBreakLength(String text, int pos) {
        if (pos >= text.length()) return 0;
        char c = text.charAt(pos);
        if (c == '\n') return 1;
        if (c == '\r' && pos + 1 < text.length() && text.charAt(pos + 1) == '\n') return 2;
        return 0;
    }

    static QdriftException error(String source, int line, int column, String message) {
        return new QdriftException(source + ":" + line + ":" + column + ": " + message);
    }

    static QdriftException error(String source, int line, String message) {
        return new QdriftException(source + ":" + line + ": " + message);
    }

    static QdriftException error(String source, Field at, String message) {
        return error(source, at.line(), at.column(), message);
    }
}
