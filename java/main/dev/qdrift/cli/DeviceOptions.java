package dev.qdrift.cli;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.backend.cuda.CudaBackend;
import picocli.CommandLine.Option;

/** --device cpu|cuda|auto: which backend runs the encoder. */
public final class DeviceOptions {
    @Option(names = "--device", defaultValue = "cpu",
            description = "cpu, cuda, or auto (cuda when a usable GPU is here, else cpu) (default: ${DEFAULT-VALUE})")
    String device;

    Backend open() {
        return switch (device) {
            case "cpu" -> new CpuBackend();
            case "cuda" -> CudaBackend.open(0);
            case "auto" -> {
                CudaBackend.Availability a = CudaBackend.availability();
                if (a.available()) yield CudaBackend.open(0);
                System.err.println("qdrift: " + a.reason() + "; running on the CPU (--device auto)");
                yield new CpuBackend();
            }
            default -> throw new QdriftException("unknown --device '" + device + "': use cpu, cuda or auto");
        };
    }
}
