using Google.Protobuf;
using Onnx;

namespace Ccr.Training.Export;

/// <summary>
/// A small builder of an ONNX graph over ONNX's own protobuf message classes (OnnxSharp's
/// GraphProto, NodeProto, TensorProto, ...): unique value names, float32 / int64 initializers,
/// nodes with attributes, and cached shape look-ups (Shape of a value, once).
/// </summary>
public sealed class OnnxGraph
{
    public GraphProto Graph { get; } = new();
    readonly HashSet<string> _names = new();
    readonly Dictionary<string, string> _shapes = new();
    readonly Dictionary<string, string> _int64Consts = new();

    /// <summary>A fresh value name from <paramref name="hint"/> (hint itself when free).</summary>
    public string Fresh(string hint)
    {
        string n = hint;
        for (int i = 1; !_names.Add(n); i++) n = $"{hint}_{i}";
        return n;
    }

    /// <summary>A float32 initializer (raw little-endian data) of shape <paramref name="dims"/>.</summary>
    public string Initializer(string name, float[] data, params long[] dims)
    {
        if (data.Length != dims.Aggregate(1L, (a, b) => a * b))
            throw new ArgumentException($"onnx initializer {name}: {data.Length} values for shape [{string.Join(", ", dims)}]");
        var t = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[data.Length * 4];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length); // the host is little-endian, as ONNX's raw_data
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX export needs a little-endian host");
        t.RawData = ByteString.CopyFrom(bytes);
        Graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>A 1-D int64 constant (shared between uses of the same values).</summary>
    public string Int64(params long[] values)
    {
        string key = string.Join(",", values);
        if (_int64Consts.TryGetValue(key, out var n)) return n;
        var t = new TensorProto { Name = Fresh("const_i64"), DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        Graph.Initializer.Add(t);
        return _int64Consts[key] = t.Name;
    }

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Node(string op, string outHint, IEnumerable<string> inputs, params AttributeProto[] attrs)
    {
        string o = Fresh(outHint);
        NodeMulti(op, o, inputs, [o], attrs);
        return o;
    }

    public void NodeMulti(string op, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attrs);
        Graph.Node.Add(n);
    }

    /// <summary>Shape(x) as int64 [rank], built once per value.</summary>
    public string Shape(string x)
    {
        if (_shapes.TryGetValue(x, out var s)) return s;
        return _shapes[x] = Node("Shape", x + "_shape", [x]);
    }

    /// <summary>int64 [2]: (H, W) of an NCHW value.</summary>
    public string SpatialSize(string x) => Node("Slice", x + "_hw", [Shape(x), Int64(2), Int64(4)]);

    public static AttributeProto Attr(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Attr(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
    public static AttributeProto Attr(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
    public static AttributeProto Attr(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    /// <summary>A float32 tensor input / output description; null dims are symbolic (named by <paramref name="symbols"/>).</summary>
    public static ValueInfoProto TensorInfo(string name, string doc, long?[] dims, string[] symbols)
    {
        var shape = new TensorShapeProto();
        for (int i = 0; i < dims.Length; i++)
            shape.Dim.Add(dims[i] is long v ? new TensorShapeProto.Types.Dimension { DimValue = v }
                                            : new TensorShapeProto.Types.Dimension { DimParam = symbols[i] });
        return new ValueInfoProto
        {
            Name = name,
            DocString = doc,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
