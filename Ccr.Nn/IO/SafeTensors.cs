using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ccr.Nn.IO;

/// <summary>A tensor held on the host as safetensors stores it: dtype name, shape, little-endian bytes.</summary>
public sealed class HostTensor
{
    public string DType { get; }
    public long[] Shape { get; }
    public byte[] Data { get; }

    public HostTensor(string dtype, long[] shape, byte[] data)
    {
        int size = SafeTensors.ElementSize(dtype);
        long n = Numel(shape);
        if (n * size != data.Length)
            throw new ArgumentException($"HostTensor: {data.Length} bytes for {dtype} shape [{string.Join(", ", shape)}] ({n * size} expected)");
        DType = dtype; Shape = shape; Data = data;
    }

    public long Numel() => Numel(Shape);
    static long Numel(long[] shape) { long n = 1; foreach (var s in shape) n *= s; return n; }

    public static HostTensor FromFloats(float[] v, params long[] shape)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), v[i]);
        return new HostTensor("F32", shape, b);
    }

    public static HostTensor FromInt64(long v) // a 0-d int64 scalar (num_batches_tracked)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return new HostTensor("I64", [], b);
    }

    public static HostTensor FromInts(int[] v, params long[] shape)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(i * 4), v[i]);
        return new HostTensor("I32", shape, b);
    }

    /// <summary>The values as float32, converting F16, BF16 and F64; integer dtypes are refused.</summary>
    public float[] ToFloats()
    {
        long n = Numel();
        var r = new float[n];
        var s = Data.AsSpan();
        switch (DType)
        {
            case "F32": for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadSingleLittleEndian(s[(i * 4)..]); break;
            case "F16": for (int i = 0; i < n; i++) r[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(i * 2)..]); break;
            // bfloat16 is the top half of a float32
            case "BF16": for (int i = 0; i < n; i++) r[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s[(i * 2)..]) << 16); break;
            case "F64": for (int i = 0; i < n; i++) r[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(s[(i * 8)..]); break;
            default: throw new InvalidDataException($"tensor of dtype {DType} is not a floating-point tensor");
        }
        return r;
    }

    public bool IsFloat => DType is "F32" or "F16" or "BF16" or "F64";
    public bool IsInteger => DType is "I64" or "I32" or "I16" or "I8" or "U8";

    /// <summary>The values as int64 (I64, I32).</summary>
    public long[] ToInt64()
    {
        long n = Numel();
        var r = new long[n];
        var s = Data.AsSpan();
        switch (DType)
        {
            case "I64": for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt64LittleEndian(s[(i * 8)..]); break;
            case "I32": for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(s[(i * 4)..]); break;
            default: throw new InvalidDataException($"tensor of dtype {DType} is not an int32/int64 tensor");
        }
        return r;
    }

    public string ShapeString => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>A parsed safetensors file: tensors by name (in header order) and the optional metadata.</summary>
public sealed class SafeTensorsFile
{
    public required string Path { get; init; }
    public required IReadOnlyDictionary<string, HostTensor> Tensors { get; init; }
    public required IReadOnlyList<string> Names { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
}

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N
/// bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
/// then the raw little-endian data, offsets relative to its start. Reading validates everything
/// (header bounds, dtypes, byte counts, offsets in range and covering the data without overlap)
/// before anything is returned; errors name the file and the tensor.
/// </summary>
public static class SafeTensors
{
    /// <summary>The readers' sanity bound on the JSON header (the reference implementation uses 100 MB).</summary>
    const long MaxHeader = 100_000_000;

    public static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new InvalidDataException($"unknown safetensors dtype '{dtype}'"),
    };

    public static void Write(string path, IEnumerable<(string Name, HostTensor Tensor)> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        Write(fs, tensors, metadata);
        fs.Flush(true);
    }

    /// <summary>Writes to a stream in the given order (names must be unique).</summary>
    public static void Write(Stream stream, IEnumerable<(string Name, HostTensor Tensor)> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata != null && metadata.Count > 0)
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, t) in list)
        {
            if (name == "__metadata__" || header.ContainsKey(name))
                throw new ArgumentException($"safetensors write: duplicate or reserved tensor name '{name}'");
            var shape = new JsonArray();
            foreach (var s in t.Shape) shape.Add(s);
            header[name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = shape,
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;  // the data starts 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
        stream.Write(len);
        stream.Write(headerBytes);
        foreach (var (_, t) in list) stream.Write(t.Data);
    }

    public static SafeTensorsFile Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot read safetensors file: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses a whole safetensors file held in memory; <paramref name="path"/> names it in errors.</summary>
    public static SafeTensorsFile Parse(byte[] bytes, string path)
    {
        InvalidDataException Bad(string what) => new($"{path}: {what}");
        if (bytes.Length < 8) throw Bad($"truncated: {bytes.Length} bytes, not even the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > MaxHeader || (long)n > bytes.Length - 8)
            throw Bad($"header length {n} exceeds the file ({bytes.Length} bytes): truncated or not a safetensors file");
        long dataStart = 8 + (long)n;
        long dataLen = bytes.Length - dataStart;

        JsonNode? root;
        try { root = JsonNode.Parse(bytes.AsSpan(8, (int)n)); }
        catch (JsonException e) { throw Bad($"header is not valid JSON: {e.Message}"); }
        if (root is not JsonObject obj) throw Bad("header is not a JSON object");

        var meta = new Dictionary<string, string>();
        var tensors = new Dictionary<string, HostTensor>();
        var names = new List<string>();
        var ranges = new List<(long Begin, long End, string Name)>();
        foreach (var (name, node) in obj)
        {
            if (name == "__metadata__")
            {
                if (node is not JsonObject m) throw Bad("__metadata__ is not an object");
                foreach (var (k, v) in m)
                {
                    if (v is not JsonValue jv || !jv.TryGetValue(out string? s)) throw Bad($"metadata '{k}' is not a string");
                    meta[k] = s;
                }
                continue;
            }
            if (node is not JsonObject e) throw Bad($"tensor '{name}': entry is not an object");
            string dtype;
            long[] shape;
            long begin, end;
            try
            {
                dtype = e["dtype"]!.GetValue<string>();
                shape = e["shape"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
                var off = e["data_offsets"]!.AsArray();
                if (off.Count != 2) throw Bad($"tensor '{name}': data_offsets must have two entries");
                begin = off[0]!.GetValue<long>(); end = off[1]!.GetValue<long>();
            }
            catch (Exception ex) when (ex is NullReferenceException or InvalidOperationException or FormatException)
            {
                throw Bad($"tensor '{name}': malformed entry (needs dtype, shape, data_offsets): {ex.Message}");
            }
            int size;
            try { size = ElementSize(dtype); }
            catch (InvalidDataException) { throw Bad($"tensor '{name}': unknown dtype '{dtype}'"); }
            if (shape.Any(s => s < 0)) throw Bad($"tensor '{name}': negative dimension in shape [{string.Join(", ", shape)}]");
            long numel = 1;
            foreach (var s in shape) numel = checked(numel * s);
            if (begin < 0 || end < begin || end > dataLen)
                throw Bad($"tensor '{name}': data_offsets [{begin}, {end}) outside the {dataLen} data bytes (truncated file?)");
            if (end - begin != numel * size)
                throw Bad($"tensor '{name}': {end - begin} bytes for {dtype} shape [{string.Join(", ", shape)}] ({numel * size} expected)");
            var data = bytes.AsSpan((int)(dataStart + begin), (int)(end - begin)).ToArray();
            tensors[name] = new HostTensor(dtype, shape, data);
            names.Add(name);
            ranges.Add((begin, end, name));
        }
        // the format forbids holes and overlaps: the tensors tile the data exactly
        ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long pos = 0;
        foreach (var (b, e, nm) in ranges)
        {
            if (b != pos) throw Bad(b < pos ? $"tensor '{nm}' overlaps the previous tensor's bytes" : $"hole of {b - pos} bytes before tensor '{nm}'");
            pos = e;
        }
        if (pos != dataLen) throw Bad($"{dataLen - pos} trailing bytes after the last tensor");
        return new SafeTensorsFile { Path = path, Tensors = tensors, Names = names, Metadata = meta };
    }
}
