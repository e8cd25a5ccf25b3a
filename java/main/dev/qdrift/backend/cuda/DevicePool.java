package dev.qdrift.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Device memory of one backend (one model / run). Blocks are kept on a stack of live allocations;
 * a scope marks the stack and, when it closes, moves every block allocated since onto per-size free
 * lists, so the next forward pass of the same shape reuses them without cudaMalloc. Nothing leaks
 * across runs: {@link #close} frees every block. Not thread-safe (one backend, one thread).
 *
 * <p>Inputs of varying shape (sentences of every length) would leave a free list per size: sizes are
 * rounded up to {@link #sizeClass} (at most 1/8 more above 1 MiB), and once more than the cache limit
 * (system property {@code qdrift.cuda.cacheMiB}, default 8192) sits unused the cache goes back to CUDA,
 * so several processes can share one GPU (a drift run on four models at once ran out of memory without it) —
 * except while a CUDA graph that may replay those blocks is alive ({@link #pin}).
 */
final class DevicePool implements AutoCloseable {
    private static final long ALIGN = 256, MIB = 1 << 20;
    private static final long CACHE_LIMIT = Long.getLong("qdrift.cuda.cacheMiB", 8192) * MIB;

    private record Block(MemorySegment ptr, long bytes) {}

    private final QdriftCuda cuda;
    private final List<Block> live = new ArrayList<>();
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>();
    private long inUse, cached, highWater;
    /** CUDA graphs alive that hold pool blocks: while any is, cached blocks are never freed for the cache limit. */
    private int pins;

    DevicePool(QdriftCuda cuda) {
        this.cuda = cuda;
    }

    MemorySegment allocate(long bytes) throws Throwable {
        long size = sizeClass(bytes);
        ArrayDeque<MemorySegment> list = free.get(size);
        MemorySegment ptr = list == null ? null : list.pollLast();
        if (ptr != null) {
            cached -= size;
        } else {
            ptr = mallocOrReleaseCache(size);
        }
        live.add(new Block(ptr, size));
        inUse += size;
        highWater = Math.max(highWater, inUse);
        return ptr;
    }

    /** cudaMalloc; on out-of-memory, give the cached free blocks back to CUDA and try once more. */
    private MemorySegment mallocOrReleaseCache(long size) throws Throwable {
        try {
            return cuda.malloc(size);
        } catch (CudaException.OutOfMemory first) {
            releaseCache();
            try {
                return cuda.malloc(size);
            } catch (CudaException.OutOfMemory e) {
                long[] info = cuda.memInfo();
                throw new CudaException.OutOfMemory(String.format(
                        "CUDA out of memory allocating %.1f MiB (pool holds %.1f MiB, device has %.1f MiB free of %.1f MiB); "
                                + "use a smaller --batch-size", size / 1048576.0, inUse / 1048576.0, info[0] / 1048576.0,
                        info[1] / 1048576.0), e.status());
            }
        }
    }

    /** Bytes actually allocated for a request: 256-byte multiples up to 1 MiB, then 8 steps per power of two. */
    static long sizeClass(long bytes) {
        long size = Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN);
        if (size <= MIB) return size;
        long step = Long.highestOneBit(size - 1) >> 3;
        return (size + step - 1) / step * step;
    }

    /** A CUDA graph captured now may replay the blocks in the free lists: keep them until {@link #unpin}. */
    void pin() {
        pins++;
    }

    void unpin() {
        pins--;
    }

    /** Whether a captured CUDA graph may still replay pool blocks (or a capture is under way). */
    boolean pinned() {
        return pins > 0;
    }

    int mark() {
        return live.size();
    }

    /** Moves every block allocated after the mark to the free lists. */
    void releaseTo(int mark) {
        for (int i = live.size() - 1; i >= mark; i--) {
            Block b = live.remove(i);
            free.computeIfAbsent(b.bytes, k -> new ArrayDeque<>()).addLast(b.ptr);
            inUse -= b.bytes;
            cached += b.bytes;
        }
        if (cached > CACHE_LIMIT && pins == 0) {
            try {
                releaseCache();
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    void releaseCache() throws Throwable {
        for (ArrayDeque<MemorySegment> list : free.values())
            for (MemorySegment p : list) cuda.free(p);
        free.clear();
        cached = 0;
    }

    long bytesInUse() {
        return inUse;
    }

    long bytesCached() {
        return cached;
    }

    long highWaterBytes() {
        return highWater;
    }

    void resetHighWater() {
        highWater = inUse;
    }

    @Override
    public void close() {
        try {
            releaseTo(0);
            releaseCache();
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
