package dev.qdrift.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Finds the native libraries the CUDA backend binds. Our own library (built by `make native`) travels
 * inside the jar at native/linux-x86_64/libqdrift_cuda.so and is extracted to a temporary file to be
 * loaded; the system property {@code qdrift.native.lib} or the environment variable
 * {@code QDRIFT_NATIVE_LIB} point at another build. cuBLAS comes from the system (libcublas.so.13).
 */
final class NativeLibraries {
    static final String OVERRIDE_PROPERTY = "qdrift.native.lib", OVERRIDE_ENV = "QDRIFT_NATIVE_LIB";
    static final String RESOURCE = "native/linux-x86_64/libqdrift_cuda.so";

    /** Loads our library or throws IllegalStateException with a one-line reason. */
    static SymbolLookup qdrift() {
        String override = System.getProperty(OVERRIDE_PROPERTY, System.getenv(OVERRIDE_ENV));
        if (override != null) {
            if (!Files.isRegularFile(Path.of(override)))
                throw new IllegalStateException(OVERRIDE_PROPERTY + " / " + OVERRIDE_ENV + " points at " + override + ", which does not exist");
            return SymbolLookup.libraryLookup(Path.of(override), Arena.global());
        }
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux") || !System.getProperty("os.arch", "").matches("amd64|x86_64"))
            throw new IllegalStateException("the bundled CUDA library is for linux-x86_64; this is "
                    + System.getProperty("os.name") + "/" + System.getProperty("os.arch"));
        try (InputStream in = NativeLibraries.class.getClassLoader().getResourceAsStream(RESOURCE)) {
            if (in == null)
                throw new IllegalStateException("this build has no CUDA library (" + RESOURCE + "); build it with `make native` (needs nvcc)");
            Path tmp = Files.createTempFile("libqdrift_cuda", ".so");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return SymbolLookup.libraryLookup(tmp, Arena.global());
        } catch (IOException e) {
            throw new IllegalStateException("cannot extract the CUDA library: " + e.getMessage(), e);
        }
    }

    static SymbolLookup system(String soname) {
        try {
            return SymbolLookup.libraryLookup(soname, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(soname + " not found (is the CUDA 13 toolkit's cuBLAS installed?)");
        }
    }

    private NativeLibraries() {}
}
