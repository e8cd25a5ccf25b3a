package dev.qdrift;

/**
 * An error the user can act on: bad input file, wrong shape, missing GPU. The message names the
 * file and the position (or the operation and sizes) so the CLI can print it as one line instead of
 * a stack trace. Internal bugs stay ordinary exceptions.
 */
public class QdriftException extends RuntimeException {
    public QdriftException(String message) {
        super(message);
    }

    public QdriftException(String message, Throwable cause) {
        super(message, cause);
    }
}
