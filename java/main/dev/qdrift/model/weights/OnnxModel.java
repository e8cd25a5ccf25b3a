package dev.qdrift.model.weights;

import dev.qdrift.QdriftException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of an ONNX ModelProto that weight loading needs: the graph's nodes (to learn which
 * anonymous MatMul weight belongs to which layer) and its float initializers. Field numbers are
 * those of onnx.proto3 (ModelProto.graph = 7, GraphProto.node = 1, initializer = 5, ...).
 */
public record OnnxModel(String source, List<Node> nodes, Map<String, Tensor> initializers,
                        List<String> inputs, List<String> outputs) {

    public record Node(String name, String opType, List<String> inputs, List<String> outputs) {}

    // onnx.TensorProto.DataType values we convert to float.
    private static final int FLOAT = 1, FLOAT16 = 10, DOUBLE = 11, BFLOAT16 = 16;

    public static OnnxModel parse(byte[] bytes, String source) {
        ProtoReader model = new ProtoReader(bytes, source);
        ProtoReader graph = null;
        while (model.hasMore()) {
            int tag = model.readTag();
            if (tag >>> 3 == 7 && (tag & 7) == ProtoReader.LENGTH_DELIMITED) graph = model.readMessage();
            else model.skip(tag);
        }
        if (graph == null) throw new QdriftException(source + ": not an ONNX model (no graph found in " + bytes.length + " bytes)");
        return parseGraph(graph, source);
    }

    private static OnnxModel parseGraph(ProtoReader g, String source) {
        List<Node> nodes = new ArrayList<>();
        Map<String, Tensor> initializers = new LinkedHashMap<>();
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        while (g.hasMore()) {
            int tag = g.readTag();
            boolean message = (tag & 7) == ProtoReader.LENGTH_DELIMITED;
            switch (message ? tag >>> 3 : -1) {
                case 1 -> nodes.add(parseNode(g.readMessage()));
                case 5 -> {
                    Tensor t = parseTensor(g.readMessage(), source);
                    if (t != null) initializers.put(t.name(), t);
                }
                case 11 -> inputs.add(valueInfoName(g.readMessage()));
                case 12 -> outputs.add(valueInfoName(g.readMessage()));
                default -> g.skip(tag);
            }
        }
        return new OnnxModel(source, nodes, initializers, inputs, outputs);
    }

    private static Node parseNode(ProtoReader n) {
        String name = "", op = "";
        List<String> in = new ArrayList<>(), out = new ArrayList<>();
        while (n.hasMore()) {
            int tag = n.readTag();
            boolean message = (tag & 7) == ProtoReader.LENGTH_DELIMITED;
            switch (message ? tag >>> 3 : -1) {
                case 1 -> in.add(n.readString());
                case 2 -> out.add(n.readString());
                case 3 -> name = n.readString();
                case 4 -> op = n.readString();
                default -> n.skip(tag);
            }
        }
        return new Node(name, op, in, out);
    }

    private static String valueInfoName(ProtoReader v) {
        String name = "";
        while (v.hasMore()) {
            int tag = v.readTag();
            if (tag >>> 3 == 1 && (tag & 7) == ProtoReader.LENGTH_DELIMITED) name = v.readString();
            else v.skip(tag);
        }
        return name;
    }

    /** A float initializer as FP32, or null for integer constants (shapes, indices) we don't need. */
    private static Tensor parseTensor(ProtoReader t, String source) {
        int start = t.position();
        List<Long> dims = new ArrayList<>();
        int dataType = 0;
        String name = "";
        long[] raw = null;
        List<Float> floatData = new ArrayList<>();
        boolean external = false;
        while (t.hasMore()) {
            int tag = t.readTag();
            int field = tag >>> 3, wire = tag & 7;
            if (field == 1 && wire == ProtoReader.VARINT) dims.add(t.readVarint());
            else if (field == 1 && wire == ProtoReader.LENGTH_DELIMITED) {
                ProtoReader packed = t.readMessage();
                while (packed.hasMore()) dims.add(packed.readVarint());
            } else if (field == 2 && wire == ProtoReader.VARINT) dataType = (int) t.readVarint();
            else if (field == 4 && wire == ProtoReader.LENGTH_DELIMITED) {
                ProtoReader packed = t.readMessage();
                while (packed.hasMore()) floatData.add(Float.intBitsToFloat(packed.readFixed32()));
            } else if (field == 4 && wire == ProtoReader.FIXED32) floatData.add(Float.intBitsToFloat(t.readFixed32()));
            else if (field == 8 && wire == ProtoReader.LENGTH_DELIMITED) name = t.readString();
            else if (field == 9 && wire == ProtoReader.LENGTH_DELIMITED) raw = t.readBytesRange();
            else if (field == 14 && wire == ProtoReader.VARINT) external = t.readVarint() == 1;
            else t.skip(tag);
        }
        if (dataType != FLOAT && dataType != FLOAT16 && dataType != DOUBLE && dataType != BFLOAT16) return null;
        if (external)
            throw new QdriftException(source + ": initializer '" + name + "' keeps its data in an external file; "
                    + "save the model with its weights inside the .onnx file");
        int[] shape = new int[dims.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = dims.get(i);
            if (d < 0 || d > Integer.MAX_VALUE) throw t.error(start, "initializer '" + name + "' has dimension " + d);
            shape[i] = (int) d;
            numel *= d;
            if (numel > Integer.MAX_VALUE) throw t.error(start, "initializer '" + name + "' is too large (" + dims + ")");
        }
        // Check the stored size against the shape before allocating: a 40-byte file may declare
        // dims of a billion elements.
        if (raw != null) {
            int width = switch (dataType) { case DOUBLE -> 8; case FLOAT -> 4; default -> 2; };
            if (raw[1] != numel * width)
                throw t.error(start, "initializer '" + name + "' has " + raw[1] + " bytes of data but shape "
                        + dims + " needs " + numel * width);
        } else if (dataType != FLOAT || floatData.size() != numel) {
            throw t.error(start, "initializer '" + name + "' holds " + floatData.size() + " values but shape "
                    + dims + " needs " + numel);
        }
        float[] data = new float[(int) numel];
        if (raw != null) {
            ByteBuffer b = ByteBuffer.wrap(t.buffer(), (int) raw[0], (int) raw[1]).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < data.length; i++) {
                data[i] = switch (dataType) {
                    case FLOAT -> b.getFloat();
                    case DOUBLE -> (float) b.getDouble();
                    case FLOAT16 -> Float.float16ToFloat(b.getShort());
                    default -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
                };
            }
        } else {
            for (int i = 0; i < data.length; i++) data[i] = floatData.get(i);
        }
        return new Tensor(name, shape, data);
    }

    /** The node that produces the given value, or null if it is a graph input or initializer. */
    public Node producer(String value) {
        for (Node n : nodes) if (n.outputs().contains(value)) return n;
        return null;
    }

    public List<Node> consumers(String value) {
        return nodes.stream().filter(n -> n.inputs().contains(value)).toList();
    }
}
