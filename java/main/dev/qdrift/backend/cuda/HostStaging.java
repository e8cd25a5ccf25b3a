package dev.qdrift.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * The page-locked host buffer that uploads and downloads pass through, so that the copy engines read and write it
 * directly, instead of a fresh pageable buffer per transfer, which cost an allocation (a mapping and page faults for
 * large ones) and the driver's own staging copy each time.
 *
 * <p>The buffer grows to the largest transfer, from {@link #MIN} up to {@link #CAP}; larger transfers go through it in
 * chunks. Every copy through it has finished when its call returns (qd_memcpy_* synchronize the stream), so one buffer
 * serves them all.
 * The new buffer is allocated before the old one is freed; where page-locked memory cannot be had, the buffer keeps the
 * size it has (chunks of it), and with none at all the caller stages through pageable memory. Not thread-safe (one
 * backend, one thread).
 */
final class HostStaging implements AutoCloseable {
    /** The largest page-locked buffer kept: 32 MiB (a BERT word-embedding table, 94 MB, goes in three chunks). */
    static final long CAP = 32L << 20;
    /**
     * The smallest: 1 MiB, so that chunks are whole doubles (a buffer sized to a first transfer of one float could not
     * carry any) and small transfers never regrow it.
     */
    static final long MIN = 1L << 20;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(HostStaging.class);

    private final QdriftCuda cuda;
    private MemorySegment pinned = MemorySegment.NULL;
    private boolean growthFailed;

    HostStaging(QdriftCuda cuda) {
        this.cuda = cuda;
    }

    /**
     * The page-locked buffer, grown towards min(bytes, CAP) first; transfers go through it in chunks of its size. Empty
     * (size 0) where none could be had: then the caller stages through pageable memory.
     */
    MemorySegment buffer(long bytes) throws Throwable {
        long want = Math.min(bytes, CAP);
        if (want > pinned.byteSize() && !growthFailed) {
            long size = Math.min(CAP, Math.max(MIN, Math.max(want, 2 * pinned.byteSize())));
            try {
                MemorySegment grown = cuda.mallocHost(size);
                release();
                pinned = grown;
            } catch (CudaException e) {
                growthFailed = true;
                LOG.warn("no page-locked host memory of {} bytes ({}): transfers go through {}", size, e.getMessage(),
                        pinned.byteSize() > 0 ? "the " + pinned.byteSize() + "-byte buffer in chunks" : "pageable memory");
            }
        }
        return pinned;
    }

    private void release() throws Throwable {
        if (pinned.byteSize() == 0) return;
        MemorySegment p = pinned;
        pinned = MemorySegment.NULL;
        cuda.freeHost(p);
    }

    /** Bytes of page-locked memory held (tests: that transfers do go through it). */
    long bytes() {
        return pinned.byteSize();
    }

    @Override
    public void close() {
        try {
            release();
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
