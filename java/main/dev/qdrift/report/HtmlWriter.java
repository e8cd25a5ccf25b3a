package dev.qdrift.report;

import dev.qdrift.report.ReportModel.Block;
import dev.qdrift.report.ReportModel.Column;
import dev.qdrift.report.ReportModel.Figure;
import dev.qdrift.report.ReportModel.HeatMaps;
import dev.qdrift.report.ReportModel.KeyValues;
import dev.qdrift.report.ReportModel.Paragraph;
import dev.qdrift.report.ReportModel.Section;
import dev.qdrift.report.ReportModel.Table;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Renders a {@link ReportModel} as one self-contained HTML page: the stylesheet is inline, charts are
 * inline SVG, there is no script and nothing is fetched, so the file can be archived, mailed and
 * opened offline years later and look the same.
 */
final class HtmlWriter {
    private final StringBuilder out = new StringBuilder(1 << 20);

    private HtmlWriter() {}

    static String render(ReportModel m) {
        HtmlWriter w = new HtmlWriter();
        w.page(m);
        return w.out.toString();
    }

    private void page(ReportModel m) {
        out.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
                .append("<title>").append(escape(m.title())).append("</title>\n<style>\n").append(CSS).append("</style>\n</head>\n<body>\n");
        out.append("<header><h1>").append(escape(m.title())).append("</h1>\n<p class=\"sub\">")
                .append(escape(m.dir())).append(" · ").append(escape(m.provenance().tool())).append(" · ")
                .append(escape(m.provenance().generated())).append("</p>\n");
        out.append("<nav>");
        for (Section s : m.sections())
            out.append("<a href=\"#").append(escape(s.id())).append("\">").append(escape(s.title())).append("</a>");
        out.append("</nav></header>\n<main>\n");
        for (Section s : m.sections()) section(s);
        if (!m.notShown().isEmpty()) {
            out.append("<section id=\"not-shown\"><h2>Not in this report</h2><ul>");
            for (String s : m.notShown()) out.append("<li>").append(escape(s)).append("</li>");
            out.append("</ul></section>\n");
        }
        out.append("</main>\n<footer>Written by ").append(escape(m.provenance().tool()))
                .append(" (qdrift report). The data behind every table and chart is in the JSON file beside this page.</footer>\n")
                .append("</body>\n</html>\n");
    }

    private void section(Section s) {
        out.append("<section id=\"").append(escape(s.id())).append("\">\n<h2>").append(escape(s.title())).append("</h2>\n");
        for (Block b : s.blocks()) {
            switch (b) {
                case Paragraph p -> paragraph(p);
                case KeyValues kv -> keyValues(kv);
                case Table t -> table(t);
                case Figure f -> figure(f);
                case HeatMaps h -> heatMaps(h);
            }
        }
        out.append("</section>\n");
    }

    private void paragraph(Paragraph p) {
        out.append("<p").append(p.tone() == null ? "" : " class=\"" + escape(p.tone()) + "\"").append('>')
                .append(escape(p.text())).append("</p>\n");
    }

    private void keyValues(KeyValues kv) {
        if (kv.title() != null) out.append("<h3>").append(escape(kv.title())).append("</h3>\n");
        out.append("<dl class=\"kv\">");
        kv.entries().forEach((k, v) -> out.append("<dt>").append(escape(k)).append("</dt><dd>").append(escape(v)).append("</dd>"));
        out.append("</dl>\n");
    }

    private void table(Table t) {
        if (t.title() != null) out.append("<h3 id=\"table-").append(escape(t.id())).append("\">").append(escape(t.title())).append("</h3>\n");
        out.append("<div class=\"scroll\"><table>\n<thead><tr>");
        for (Column c : t.columns()) out.append(numeric(c) ? "<th class=\"n\">" : "<th>").append(escape(c.name())).append("</th>");
        out.append("</tr></thead>\n<tbody>\n");
        for (List<Object> row : t.rows()) {
            out.append("<tr>");
            for (int i = 0; i < t.columns().size(); i++) {
                Column c = t.columns().get(i);
                Object v = i < row.size() ? row.get(i) : null;
                String cls = numeric(c) ? " class=\"n\"" : "";
                if (c.format() == ReportModel.Format.HASH && v != null)
                    out.append("<td class=\"hash\" title=\"").append(escape(v.toString())).append("\">");
                else
                    out.append("<td").append(cls).append('>');
                out.append(escape(format(v, c.format()))).append("</td>");
            }
            out.append("</tr>\n");
        }
        out.append("</tbody></table></div>\n");
        if (t.caption() != null) out.append("<p class=\"caption\">").append(escape(t.caption())).append("</p>\n");
    }

    /** Numbers align right (digits line up); text and hashes align left. */
    private static boolean numeric(Column c) {
        return c.format() != ReportModel.Format.TEXT && c.format() != ReportModel.Format.HASH;
    }

    private void figure(Figure f) {
        out.append("<figure id=\"").append(escape(f.id())).append("\">\n").append(f.svg()).append("\n<figcaption><b>")
                .append(escape(f.title())).append(".</b> ").append(escape(f.caption())).append("</figcaption>\n</figure>\n");
    }

    /**
     * Each example: its sentence, then one row per precision with every token's background set by its
     * attribution (red positive, blue negative), scaled by that row's largest |attribution| so rows of
     * different magnitude stay comparable in shape; the exact value is in each token's tooltip.
     */
    private void heatMaps(HeatMaps h) {
        out.append("<h3>").append(escape(h.title())).append("</h3>\n");
        if (h.caption() != null) out.append("<p class=\"caption\">").append(escape(h.caption())).append("</p>\n");
        for (DriftData.Example e : h.examples()) {
            out.append("<div class=\"example\"><p class=\"sentence\">").append(escape(e.text() == null ? String.join(" ", e.tokens()) : e.text()));
            if (e.label() != null) out.append(" <span class=\"gold\">gold: ").append(escape(e.label())).append("</span>");
            out.append("</p>\n<table class=\"heat\">\n");
            for (Map.Entry<String, double[]> row : e.attributions().entrySet()) {
                String predicted = e.predicted().get(row.getKey());
                out.append("<tr><th>").append(escape(row.getKey()));
                if (predicted != null) out.append("<br><span class=\"pred\">→ ").append(escape(predicted)).append("</span>");
                out.append("</th><td>");
                double[] a = row.getValue();
                double max = 0;
                for (double v : a) if (Double.isFinite(v)) max = Math.max(max, Math.abs(v));
                for (int i = 0; i < a.length; i++) {
                    String tok = e.tokens().get(i);
                    boolean piece = tok.startsWith("##");
                    double alpha = max == 0 || !Double.isFinite(a[i]) ? 0 : Math.abs(a[i]) / max;
                    String rgb = a[i] >= 0 ? "214,39,40" : "31,119,180";
                    out.append(piece ? "" : " ").append("<span class=\"tok").append(piece ? " piece" : "")
                            .append("\" style=\"background:rgba(").append(rgb).append(',').append(String.format(Locale.ROOT, "%.2f", alpha))
                            .append(")\" title=\"").append(escape(String.format(Locale.ROOT, "%.4g", a[i]))).append("\">")
                            .append(escape(piece ? tok.substring(2) : tok)).append("</span>");
                }
                out.append("</td></tr>\n");
            }
            out.append("</table></div>\n");
        }
    }

    /** A cell as text; null and NaN are "–" (not measured), never "NaN". */
    static String format(Object v, ReportModel.Format f) {
        if (v == null) return "–";
        if (!(v instanceof Number n) || f == ReportModel.Format.TEXT) return v.toString();
        double d = n.doubleValue();
        if (Double.isNaN(d)) return "–";
        return switch (f) {
            case INT -> String.format(Locale.ROOT, "%,d", n.longValue());
            case FIXED1 -> String.format(Locale.ROOT, "%.1f", d);
            case FIXED2 -> String.format(Locale.ROOT, "%.2f", d);
            case FIXED3 -> String.format(Locale.ROOT, "%.3f", d);
            case FIXED4 -> String.format(Locale.ROOT, "%.4f", d);
            case PERCENT -> String.format(Locale.ROOT, "%.1f%%", 100 * d);
            case SCI -> String.format(Locale.ROOT, "%.2e", d);
            case MIB -> String.format(Locale.ROOT, "%,.1f", d / (1 << 20));
            case HASH, TEXT -> v.toString();
        };
    }

    static String escape(String s) {
        if (s == null) return "";
        StringBuilder b = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    /** System fonts only: a web font would be a network fetch, or a large inline blob. */
    private static final String CSS = """
            :root { --fg: #1d1d1f; --muted: #5f6368; --line: #e3e3e3; --accent: #4c78a8; }
            * { box-sizing: border-box; }
            body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); background: #fafafa; }
            header { background: #fff; border-bottom: 1px solid var(--line); padding: 20px 32px 8px; }
            h1 { margin: 0 0 4px; font-size: 26px; }
            .sub { margin: 0 0 10px; color: var(--muted); font-size: 13px; }
            nav a { display: inline-block; margin: 0 14px 8px 0; color: var(--accent); text-decoration: none; font-size: 14px; }
            main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 32px; }
            section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 24px 16px; margin: 20px 0; }
            h2 { font-size: 20px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
            h3 { font-size: 16px; margin: 20px 0 6px; }
            table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
            th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
            th { background: #f3f5f8; font-weight: 600; }
            .n { text-align: right; font-variant-numeric: tabular-nums; }
            td.n { white-space: nowrap; }
            tbody tr:nth-child(even) { background: #fbfbfc; }
            td.hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11px; word-break: break-all; min-width: 17em; max-width: 17em; }
            .scroll { overflow-x: auto; }
            .caption, figcaption { color: var(--muted); font-size: 13px; margin: 4px 0 12px; max-width: 900px; }
            figure { margin: 16px 0; }
            figure svg { display: block; max-width: 100%; height: auto; }
            dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 14px; }
            dl.kv dt { color: var(--muted); }
            dl.kv dd { margin: 0; word-break: break-word; white-space: pre-line; }
            p.pass, p.fail, p.note { padding: 6px 12px; border-radius: 4px; }
            p.pass { background: #e8f5e9; border-left: 4px solid #2e7d32; }
            p.fail { background: #fdecea; border-left: 4px solid #c62828; }
            p.note { background: #f5f7fa; border-left: 4px solid #9aa5b1; color: var(--muted); font-size: 13px; }
            .example { margin: 10px 0 18px; }
            .sentence { margin: 4px 0; font-style: italic; }
            .gold, .pred { font-style: normal; color: var(--muted); font-size: 12px; }
            table.heat th { width: 120px; font-weight: 500; }
            table.heat td { line-height: 2; }
            .tok { padding: 2px 3px; border-radius: 3px; }
            .tok.piece { padding-left: 0; }
            footer { color: var(--muted); font-size: 12px; text-align: center; padding: 12px 0 28px; }
            """;
}
