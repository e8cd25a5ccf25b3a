package dev.qdrift.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The report opened in a real browser: headless Chromium, offline (no network flags), takes a
 * screenshot. A page that failed to render, or rendered blank, gives a small or one-colour PNG.
 * Skips where Chromium is not installed (Debian: apt-get install chromium).
 */
class ChromiumRenderTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");

    @Test
    void rendersInHeadlessChromium(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(CHROMIUM), "chromium not installed: " + CHROMIUM + " (apt-get install chromium)");
        Path results = dir.resolve("results");
        ReportFixtures.writeAll(results);
        Report.Written w = Report.write(results, results.resolve("report.html"), "qdrift 0.1.0");
        BufferedImage shot = screenshot(w.html(), dir, 1280, 2000);
        assertEquals(1280, shot.getWidth());
        assertTrue(Files.size(dir.resolve("shot.png")) > 20_000, "screenshot is " + Files.size(dir.resolve("shot.png")) + " bytes");
        int colours = distinctColours(shot);
        assertTrue(colours > 50, "only " + colours + " distinct colours: blank page?");
    }

    /** Screenshot of file://html, window width x height; the PNG lands in work/shot.png. */
    static BufferedImage screenshot(Path html, Path work, int width, int height) throws Exception {
        Path png = work.resolve("shot.png");
        List<String> cmd = List.of(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + work.resolve("profile"), "--screenshot=" + png, "--window-size=" + width + "," + height,
                html.toAbsolutePath().toUri().toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(work.resolve("chromium.log").toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("chromium did not finish in 120 s: " + Files.readString(work.resolve("chromium.log")));
        }
        assertTrue(Files.isRegularFile(png), "no screenshot; chromium said: " + Files.readString(work.resolve("chromium.log")));
        return ImageIO.read(png.toFile());
    }

    static int distinctColours(BufferedImage img) {
        Set<Integer> seen = new HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 2)
            for (int x = 0; x < img.getWidth(); x += 2) seen.add(img.getRGB(x, y));
        return seen.size();
    }
}
