package dev.qdrift.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The pool's size classes (no GPU needed): never smaller than asked, little waste, few classes. */
class DevicePoolSizeClassTest {
    @Test
    void smallSizesAreWhole256ByteUnits() {
        assertEquals(256, DevicePool.sizeClass(1));
        assertEquals(256, DevicePool.sizeClass(256));
        assertEquals(512, DevicePool.sizeClass(257));
        assertEquals(1 << 20, DevicePool.sizeClass(1 << 20));
    }

    @Test
    void largeSizesRoundUpByAtMostAnEighth() {
        Random r = new Random(3);
        Set<Long> classes = new HashSet<>();
        for (int i = 0; i < 100_000; i++) {
            long bytes = (1L << 20) + (long) (r.nextDouble() * (1L << 32));
            long c = DevicePool.sizeClass(bytes);
            assertTrue(c >= bytes && c <= bytes + bytes / 8 + 256, bytes + " -> " + c);
            assertEquals(c, DevicePool.sizeClass(c), "a class is its own class");
            classes.add(c);
        }
        // 1 MiB .. 4 GiB is 12 doublings: at most 8 classes each.
        assertTrue(classes.size() <= 12 * 8 + 1, classes.size() + " classes");
    }
}
