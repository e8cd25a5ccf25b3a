package dev.qdrift.quant;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.QuantGrid;

/**
 * How one tensor kind is quantized: bit width, symmetric or asymmetric grid, granularity, and (for
 * activations) how the range is calibrated.
 *
 * @param groups number of channel groups for {@link Granularity#PER_GROUP} (PEG), else 0
 * @param percentile for {@link Calibrator#PERCENTILE}, e.g. 99.99, else 0
 */
public record QuantSpec(int bits, boolean symmetric, Granularity granularity, int groups, Calibrator calibrator, double percentile) {

    public enum Granularity {
        /** One range for the whole tensor. */
        PER_TENSOR,
        /** Weights: one range per output channel (row). Activations: one per column. */
        PER_CHANNEL,
        /** Activations: one range per token (row), taken from the row itself at run time (dynamic). */
        PER_TOKEN,
        /** Activations: per-embedding-group (PEG) — hidden channels sorted by calibrated range, K equal groups. */
        PER_GROUP
    }

    public enum Calibrator {
        /** min / max over the whole calibration sample. */
        MINMAX,
        /** exponential moving average (momentum 0.1) of each batch's min / max, as PyTorch's MovingAverageMinMaxObserver. */
        RUNNING_MINMAX,
        /** clip to the given percentile of the values (lower tail: 100 - p). */
        PERCENTILE,
        /** the clipping range that minimizes the expected squared quantization error over the histogram. */
        MSE
    }

    public QuantSpec {
        new QuantGrid(bits, symmetric); // validates bits
        if (granularity == Granularity.PER_GROUP && groups < 1)
            throw new QdriftException("per-group quantization needs a number of groups >= 1, got " + groups);
        if (calibrator == Calibrator.PERCENTILE && !(percentile > 50 && percentile < 100))
            throw new QdriftException("percentile must be in (50, 100), e.g. 99.99; got " + percentile);
    }

    public QuantGrid grid() {
        return new QuantGrid(bits, symmetric);
    }

    public static QuantSpec weights(int bits, boolean perChannel) {
        return new QuantSpec(bits, true, perChannel ? Granularity.PER_CHANNEL : Granularity.PER_TENSOR, 0, Calibrator.MINMAX, 0);
    }

    public static QuantSpec activations(int bits, Calibrator calibrator, double percentile) {
        return new QuantSpec(bits, false, Granularity.PER_TENSOR, 0, calibrator, percentile);
    }

    public String describe() {
        String g = switch (granularity) {
            case PER_TENSOR -> "per-tensor";
            case PER_CHANNEL -> "per-channel";
            case PER_TOKEN -> "per-token";
            case PER_GROUP -> "PEG K=" + groups;
        };
        String c = calibrator == Calibrator.PERCENTILE ? "percentile " + percentile : calibrator.name().toLowerCase().replace('_', '-');
        return bits + "-bit " + (symmetric ? "symmetric" : "asymmetric") + " " + g + ", " + c;
    }
}
