package dev.qdrift.backend.cuda;

import dev.qdrift.QdriftException;

/** A failed CUDA, cuBLAS or qdrift-kernel call, naming the operation, its sizes and the status. */
public class CudaException extends QdriftException {
    private final int status;

    public CudaException(String message, int status) {
        super(message);
        this.status = status;
    }

    public int status() {
        return status;
    }

    /** Device memory ran out; the backend stays usable (retry with a smaller batch). */
    public static final class OutOfMemory extends CudaException {
        public OutOfMemory(String message, int status) {
            super(message, status);
        }
    }
}
