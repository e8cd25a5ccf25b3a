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
 * so several processes can share one GPU (a drift run on four models at once ran out of memory without it).
 *
 * <p>While a CUDA graph is recorded ({@link #beginGraph}) blocks are the graph's own: cudaMallocAsync / cudaFreeAsync,
 * captured as the graph's allocation and free nodes, so no later allocation here is ever handed memory a replay writes
 * (CUDA backs graph allocations from memory of its own, which graphs run one after another share). Buffers a graph
 * reads and writes across replays are {@link #allocateKept kept} blocks, outside the scopes' stack.
 */
final class DevicePool implements AutoCloseable {
    private static final long ALIGN = 256, MIB = 1 << 20;
    private static final long CACHE_LIMIT = Long.getLong("qdrift.cuda.cacheMiB", 8192) * MIB;

    /** graph: allocated while a graph was recorded (the graph's own, freed in it). */
    private record Block(MemorySegment ptr, long bytes, boolean graph) {}

    private final QdriftCuda cuda;
    private final List<Block> live = new ArrayList<>();
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>();
    private final Map<MemorySegment, Long> kept = new HashMap<>();
    private long inUse, cached, highWater;
    /** The stream a graph is being recorded on, or null; the first failure to free one of its blocks. */
    private MemorySegment recording;
    private Throwable recordingFailure;

    DevicePool(QdriftCuda cuda) {
        this.cuda = cuda;
    }

    MemorySegment allocate(long bytes) throws Throwable {
        long size = sizeClass(bytes);
        if (recording != null) {
            MemorySegment ptr = cuda.mallocAsync(size, recording);
            live.add(new Block(ptr, size, true));
            return ptr;
        }
        MemorySegment ptr = take(size);
        live.add(new Block(ptr, size, false));
        return ptr;
    }

    /** A block outside the scopes' stack, until {@link #releaseKept}: what a recorded graph reads and writes across replays. */
    MemorySegment allocateKept(long bytes) throws Throwable {
        if (recording != null) throw new IllegalStateException("kept buffers are allocated before recording, not during it");
        long size = sizeClass(bytes);
        MemorySegment ptr = take(size);
        kept.put(ptr, size);
        return ptr;
    }

    void releaseKept(MemorySegment ptr) {
        Long size = kept.remove(ptr);
        if (size == null) throw new IllegalArgumentException("not a kept block");
        free.computeIfAbsent(size, k -> new ArrayDeque<>()).addLast(ptr);
        inUse -= size;
        cached += size;
    }

    /** A block of size from the free lists, else cudaMalloc; counted in use. */
    private MemorySegment take(long size) throws Throwable {
        ArrayDeque<MemorySegment> list = free.get(size);
        MemorySegment ptr = list == null ? null : list.pollLast();
        if (ptr != null) {
            cached -= size;
        } else {
            ptr = mallocOrReleaseCache(size);
        }
        inUse += size;
        highWater = Math.max(highWater, inUse);
        return ptr;
    }

    /**
     * cudaMalloc; on out-of-memory, give the cached free blocks back to CUDA, and the memory it keeps for replayed graphs
     * beyond what they need now, and try once more.
     */
    private MemorySegment mallocOrReleaseCache(long size) throws Throwable {
        try {
            return cuda.malloc(size);
        } catch (CudaException.OutOfMemory first) {
            releaseCache();
            cuda.trimGraphMemory();
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

    /** From now until {@link #endGraph}, blocks are allocated and freed on stream, captured into the graph recorded there. */
    void beginGraph(MemorySegment stream) {
        if (recording != null) throw new IllegalStateException("a graph is being recorded already");
        recording = stream;
        recordingFailure = null;
    }

    /**
     * Ends the recording's allocations. Every block allocated during it must have been freed during it (a scope opened and
     * closed inside): one still live is dropped (its memory is the graph's) and reported.
     */
    void endGraph() {
        recording = null;
        boolean outlived = live.removeIf(Block::graph);
        if (recordingFailure != null)
            throw new IllegalStateException("freeing a recorded buffer failed: " + recordingFailure, recordingFailure);
        if (outlived)
            throw new IllegalStateException("a buffer allocated while recording a graph outlives the recording (allocate it kept)");
    }

    int mark() {
        return live.size();
    }

    /** Moves every block allocated after the mark to the free lists. */
    void releaseTo(int mark) {
        for (int i = live.size() - 1; i >= mark; i--) {
            Block b = live.remove(i);
            if (b.graph) {
                freeRecorded(b.ptr);
                continue;
            }
            free.computeIfAbsent(b.bytes, k -> new ArrayDeque<>()).addLast(b.ptr);
            inUse -= b.bytes;
            cached += b.bytes;
        }
        if (cached > CACHE_LIMIT) {
            try {
                releaseCache();
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    /** A recorded block's free node; a failure (a capture already broken) is kept for {@link #endGraph}, not thrown mid-unwinding. */
    private void freeRecorded(MemorySegment ptr) {
        try {
            cuda.freeAsync(ptr, recording);
        } catch (Throwable t) {
            if (recordingFailure == null) recordingFailure = t;
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
            for (MemorySegment p : List.copyOf(kept.keySet())) releaseKept(p);
            releaseCache();
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
