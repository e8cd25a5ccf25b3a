package dev.qdrift.experiment;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.qdrift.QdriftException;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.nio.LongBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * ONNX Runtime (CPU execution provider) running a model's own ONNX file: the trusted runtime our
 * FP32 encoder is checked against, and the speed reference of the CPU benchmark.
 */
public final class OnnxReference implements AutoCloseable {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    public OnnxReference(byte[] onnx, int threads) {
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(threads);
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(onnx, o);
        } catch (OrtException e) {
            throw new QdriftException("ONNX Runtime cannot load the model: " + e.getMessage(), e);
        }
    }

    /** last_hidden_state [batch, seq, hidden] for the batch. */
    public float[] lastHidden(TokenBatch in) {
        long[] shape = {in.batch(), in.seqLen()};
        Map<String, OnnxTensor> inputs = new HashMap<>();
        try {
            for (String name : session.getInputNames()) {
                int[] src = switch (name) {
                    case "input_ids" -> in.ids();
                    case "attention_mask" -> in.mask();
                    case "token_type_ids" -> in.typeIds();
                    default -> throw new QdriftException("ONNX model has an input '" + name + "' qdrift does not know how to feed");
                };
                long[] l = new long[src.length];
                for (int i = 0; i < l.length; i++) l[i] = src[i];
                inputs.put(name, OnnxTensor.createTensor(env, LongBuffer.wrap(l), shape));
            }
            try (OrtSession.Result r = session.run(inputs)) {
                OnnxTensor out = (OnnxTensor) r.get(0);
                float[] data = new float[(int) (out.getInfo().getNumElements())];
                out.getFloatBuffer().get(data);
                return data;
            }
        } catch (OrtException e) {
            throw new QdriftException("ONNX Runtime failed on a batch of " + in.batch() + "x" + in.seqLen() + ": " + e.getMessage(), e);
        } finally {
            inputs.values().forEach(OnnxTensor::close);
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new QdriftException("closing ONNX Runtime session: " + e.getMessage(), e);
        }
    }
}
