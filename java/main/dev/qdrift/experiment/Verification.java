package dev.qdrift.experiment;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.data.Dataset;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Our FP32 encoder against ONNX Runtime on the model's own ONNX file, over real inputs.
 *
 * <p>The error norm: for each input, the largest absolute difference of the last hidden state over
 * its real (unpadded) tokens and all hidden dimensions, divided by the largest absolute reference
 * value over the same tokens (a relative max-norm; padded positions are excluded because they carry
 * no meaning). The verdict is the worst input. The relative Frobenius error is reported alongside.
 */
public final class Verification {
    public record Result(String model, String backend, String data, int n, int batches, double maxRelative, double meanRelative,
                         double maxRelativeFrobenius, int worstIndex, double tolerance, boolean passed, long truncated) {}

    public static Result run(Model model, Dataset data, int batchSize, double tolerance) {
        try (CpuBackend cpu = new CpuBackend()) {
            return run(model, new Encoder(model.weights(), cpu), data, batchSize, tolerance);
        }
    }

    public static Result run(Model model, Encoder encoder, Dataset data, int batchSize, double tolerance) {
        if (model.onnxBytes() == null)
            throw new QdriftException(model.id() + ": no ONNX file to verify against (put model.onnx in the model directory)");
        Tokenizer tok = model.tokenizer();
        long truncatedBefore = tok.truncatedCount();
        int h = model.config().hidden();
        double worst = 0, sum = 0, worstFro = 0;
        int worstIndex = -1, batches = 0;
        Progress progress = new Progress("verify", data.size());
        try (OnnxReference ort = new OnnxReference(model.onnxBytes().get(), Runtime.getRuntime().availableProcessors())) {
            for (int s = 0; s < data.size(); s += batchSize) {
                List<Tokenizer.Encoded> enc = new ArrayList<>();
                for (int i = s; i < Math.min(data.size(), s + batchSize); i++)
                    enc.add(tok.encode(data.examples().get(i).text(), data.examples().get(i).textPair()));
                TokenBatch batch = TokenBatch.pad(enc.toArray(Tokenizer.Encoded[]::new));
                float[] ours = encoder.forward(batch, Pooling.CLS).lastHidden();
                float[] ref = ort.lastHidden(batch);
                batches++;
                for (int i = 0; i < batch.batch(); i++) {
                    double maxDiff = 0, maxRef = 0, diff2 = 0, ref2 = 0;
                    for (int t = 0; t < batch.length(i); t++) {
                        int o = (i * batch.seqLen() + t) * h;
                        for (int d = 0; d < h; d++) {
                            double e = Math.abs((double) ours[o + d] - ref[o + d]);
                            maxDiff = Math.max(maxDiff, e);
                            maxRef = Math.max(maxRef, Math.abs(ref[o + d]));
                            diff2 += e * e;
                            ref2 += (double) ref[o + d] * ref[o + d];
                        }
                    }
                    double rel = maxDiff / maxRef;
                    sum += rel;
                    if (rel > worst || worstIndex < 0) {
                        worst = rel;
                        worstIndex = s + i;
                    }
                    worstFro = Math.max(worstFro, Math.sqrt(diff2 / ref2));
                }
                progress.advance(batch.batch());
            }
        }
        return new Result(model.id(), encoder.backend().name(), data.source(), data.size(), batches, worst, sum / data.size(), worstFro, worstIndex,
                tolerance, worst <= tolerance, tok.truncatedCount() - truncatedBefore);
    }

    private Verification() {}
}
