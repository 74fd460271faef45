using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Ccr.Training.Data;

/// <summary>A MATLAB array. Dims are MATLAB's (rows, cols, ...); element data are column-major.</summary>
public abstract class MatArray
{
    public string Name { get; internal set; } = "";
    public int[] Dims { get; internal set; } = [0, 0];
    public int Count => Dims.Aggregate(1, (a, b) => a * b);
    public bool IsEmpty => Count == 0;
}

/// <summary>A numeric or logical array; values widened to float64 (exact for up to 53-bit ints).</summary>
public sealed class MatNumeric : MatArray
{
    /// <summary>MATLAB class id: 6 double, 7 single, 8 int8, 9 uint8, ... 15 uint64.</summary>
    public int ClassId { get; internal set; }
    public bool IsLogical { get; internal set; }
    public double[] Data { get; internal set; } = [];

    public double Scalar => Data.Length > 0 ? Data[0]
        : throw new InvalidOperationException($"MAT variable '{Name}' is empty, expected a scalar");

    /// <summary>A 2-D array (rows = H, cols = W) as row-major (H, W) ints.</summary>
    public int[] ToRowMajorInt(out int height, out int width)
    {
        if (Dims.Length != 2) throw new InvalidOperationException($"MAT variable '{Name}' has {Dims.Length} dims, expected 2");
        height = Dims[0];
        width = Dims[1];
        var r = new int[height * width];
        for (int x = 0; x < width; x++)
            for (int y = 0; y < height; y++) r[y * width + x] = (int)Data[x * height + y];
        return r;
    }
}

public sealed class MatChar : MatArray
{
    public string Value { get; internal set; } = "";
}

/// <summary>A struct array: Elements[i][field] for element i in column-major order.</summary>
public sealed class MatStruct : MatArray
{
    public string[] FieldNames { get; internal set; } = [];
    public Dictionary<string, MatArray>[] Elements { get; internal set; } = [];

    public MatArray Field(int element, string field) =>
        Elements[element].TryGetValue(field, out var v) ? v
            : throw new KeyNotFoundException($"MAT struct '{Name}' has no field '{field}' (fields: {string.Join(", ", FieldNames)})");
}

public sealed class MatCell : MatArray
{
    public MatArray[] Items { get; internal set; } = [];
}

/// <summary>
/// Reader of MATLAB level-5 .mat files (what scipy.io.savemat and MATLAB's default -v7 write):
/// miCOMPRESSED (zlib) elements, miMATRIX of every numeric class and logical, char, struct and cell
/// arrays, small-data-element tags. Sparse, object and complex arrays are rejected with a message.
/// Enough for PASCAL-Context's <c>LabelMap</c> and the parts' <c>anno.objects(i).parts(j).mask</c>.
/// </summary>
public static class MatFile
{
    internal const int MiInt8 = 1, MiUInt8 = 2, MiInt16 = 3, MiUInt16 = 4, MiInt32 = 5, MiUInt32 = 6,
        MiSingle = 7, MiDouble = 9, MiInt64 = 12, MiUInt64 = 13, MiMatrix = 14, MiCompressed = 15,
        MiUtf8 = 16, MiUtf16 = 17, MiUtf32 = 18;
    internal const int ClsCell = 1, ClsStruct = 2, ClsObject = 3, ClsChar = 4, ClsSparse = 5, ClsDouble = 6,
        ClsSingle = 7, ClsInt8 = 8, ClsUInt8 = 9, ClsInt16 = 10, ClsUInt16 = 11, ClsInt32 = 12,
        ClsUInt32 = 13, ClsInt64 = 14, ClsUInt64 = 15;

    /// <summary>Reads every top-level variable, by name.</summary>
    public static Dictionary<string, MatArray> Read(string path)
    {
        byte[] b;
        try { b = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFileException(path, "file not found", e);
        }
        try { return Parse(b); }
        catch (Exception e) when (e is InvalidDataException or ArgumentOutOfRangeException or IndexOutOfRangeException or NotSupportedException)
        {
            throw new DataFileException(path, $"corrupt or unsupported MAT file ({e.Message})", e);
        }
    }

    /// <summary>Reads one variable or throws naming the file and the variables it has.</summary>
    public static MatArray ReadVariable(string path, string name)
    {
        var vars = Read(path);
        return vars.TryGetValue(name, out var v) ? v
            : throw new DataFileException(path, $"no variable '{name}' (has: {string.Join(", ", vars.Keys)})");
    }

    public static Dictionary<string, MatArray> Parse(byte[] b)
    {
        if (b.Length < 128) throw new InvalidDataException("shorter than the 128-byte MAT header");
        if (b[126] != 'I' || b[127] != 'M')
            throw new NotSupportedException(b[126] == 'M' && b[127] == 'I'
                ? "big-endian MAT files are not supported" : "not a level-5 MAT file (v7.3/HDF5 or v4?)");
        var vars = new Dictionary<string, MatArray>();
        int pos = 128;
        while (pos + 8 <= b.Length)
        {
            var (type, data, next) = ReadTag(b, pos);
            pos = next;
            MatArray? a = ReadElement(type, data);
            if (a != null) vars[a.Name] = a;
        }
        return vars;
    }

    /// <summary>Reads one tag at pos: (type, payload, position of the next element incl. padding).</summary>
    private static (int Type, ReadOnlyMemory<byte> Data, int Next) ReadTag(byte[] b, int pos)
    {
        uint first = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos));
        if ((first >> 16) != 0)
        {
            // Small data element: 2-byte size, 2-byte type, up to 4 bytes of data in the same 8 bytes.
            int sz = (int)(first >> 16);
            if (sz > 4) throw new InvalidDataException($"small data element of {sz} bytes at {pos}");
            return ((int)(first & 0xFFFF), b.AsMemory(pos + 4, sz), pos + 8);
        }
        int n = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos + 4)));
        if (pos + 8 + n > b.Length) throw new InvalidDataException($"element at {pos} of {n} bytes runs past the end");
        int type = (int)first;
        // Compressed elements are not padded; every other element is padded to 8 bytes.
        int next = type == MiCompressed ? pos + 8 + n : pos + 8 + ((n + 7) & ~7);
        return (type, b.AsMemory(pos + 8, n), Math.Min(next, b.Length));
    }

    private static MatArray? ReadElement(int type, ReadOnlyMemory<byte> data)
    {
        if (type == MiCompressed)
        {
            using var z = new ZLibStream(new MemoryStream(data.ToArray()), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            z.CopyTo(ms);
            byte[] inner = ms.ToArray();
            if (inner.Length < 8) throw new InvalidDataException("empty compressed element");
            var (t, d, _) = ReadTag(inner, 0);
            return ReadElement(t, d);
        }
        if (type == MiMatrix) return ReadMatrix(data.ToArray());
        return null; // Stray data elements at top level carry no variable.
    }

    private static MatArray ReadMatrix(byte[] b)
    {
        // An empty miMATRIX (0 bytes) is MATLAB's [] inside structs and cells.
        if (b.Length == 0) return new MatNumeric { ClassId = ClsDouble, Dims = [0, 0] };
        int pos = 0;
        var (ft, flags, p1) = ReadTag(b, pos); pos = p1;
        if (ft != MiUInt32 || flags.Length < 8) throw new InvalidDataException("miMATRIX without array flags");
        uint f0 = BinaryPrimitives.ReadUInt32LittleEndian(flags.Span);
        int cls = (int)(f0 & 0xFF);
        bool complex = (f0 & 0x800) != 0, logical = (f0 & 0x200) != 0;
        var (_, dimsData, p2) = ReadTag(b, pos); pos = p2;
        int[] dims = new int[dimsData.Length / 4];
        for (int i = 0; i < dims.Length; i++) dims[i] = BinaryPrimitives.ReadInt32LittleEndian(dimsData.Span[(4 * i)..]);
        var (_, nameData, p3) = ReadTag(b, pos); pos = p3;
        string name = Encoding.ASCII.GetString(nameData.Span);
        int count = dims.Aggregate(1, (a, c) => a * c);
        switch (cls)
        {
            case ClsCell:
            {
                var items = new MatArray[count];
                for (int i = 0; i < count; i++)
                {
                    var (t, d, np) = ReadTag(b, pos); pos = np;
                    items[i] = ReadElement(t, d) ?? throw new InvalidDataException("cell item is not a matrix");
                }
                return new MatCell { Name = name, Dims = dims, Items = items };
            }
            case ClsStruct:
            {
                var (_, lenData, q1) = ReadTag(b, pos); pos = q1;
                int fieldLen = BinaryPrimitives.ReadInt32LittleEndian(lenData.Span);
                var (_, namesData, q2) = ReadTag(b, pos); pos = q2;
                int nf = fieldLen == 0 ? 0 : namesData.Length / fieldLen;
                var fields = new string[nf];
                for (int i = 0; i < nf; i++)
                    fields[i] = Encoding.ASCII.GetString(namesData.Span.Slice(i * fieldLen, fieldLen)).TrimEnd('\0');
                var elems = new Dictionary<string, MatArray>[count];
                for (int e = 0; e < count; e++)
                {
                    elems[e] = new Dictionary<string, MatArray>();
                    foreach (string f in fields)
                    {
                        var (t, d, np) = ReadTag(b, pos); pos = np;
                        var v = ReadElement(t, d) ?? throw new InvalidDataException($"struct field '{f}' is not a matrix");
                        v.Name = f;
                        elems[e][f] = v;
                    }
                }
                return new MatStruct { Name = name, Dims = dims, FieldNames = fields, Elements = elems };
            }
            case ClsChar:
            {
                var (t, d, _) = ReadTag(b, pos);
                string s = t switch
                {
                    MiUtf8 or MiUInt8 or MiInt8 => Encoding.UTF8.GetString(d.Span),
                    MiUtf16 or MiUInt16 => Encoding.Unicode.GetString(d.Span),
                    _ => string.Concat(ToDoubles(t, d.Span).Select(c => (char)c)),
                };
                return new MatChar { Name = name, Dims = dims, Value = s };
            }
            case >= ClsDouble and <= ClsUInt64:
            {
                if (complex) throw new NotSupportedException($"complex array '{name}'");
                var (t, d, _) = ReadTag(b, pos);
                double[] v = ToDoubles(t, d.Span);
                if (v.Length != count) throw new InvalidDataException($"array '{name}' has {v.Length} values for dims {string.Join("x", dims)}");
                return new MatNumeric { Name = name, Dims = dims, ClassId = cls, IsLogical = logical, Data = v };
            }
            case ClsSparse: throw new NotSupportedException($"sparse array '{name}'");
            case ClsObject: throw new NotSupportedException($"object array '{name}'");
            default: throw new NotSupportedException($"array class {cls} of '{name}'");
        }
    }

    internal static double[] ToDoubles(int type, ReadOnlySpan<byte> s)
    {
        int size = type switch
        {
            MiInt8 or MiUInt8 or MiUtf8 => 1, MiInt16 or MiUInt16 or MiUtf16 => 2,
            MiInt32 or MiUInt32 or MiSingle or MiUtf32 => 4, MiDouble or MiInt64 or MiUInt64 => 8,
            _ => throw new NotSupportedException($"data type {type}"),
        };
        var r = new double[s.Length / size];
        for (int i = 0; i < r.Length; i++)
        {
            var e = s[(i * size)..];
            r[i] = type switch
            {
                MiInt8 => (sbyte)e[0],
                MiUInt8 or MiUtf8 => e[0],
                MiInt16 => BinaryPrimitives.ReadInt16LittleEndian(e),
                MiUInt16 or MiUtf16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
                MiInt32 => BinaryPrimitives.ReadInt32LittleEndian(e),
                MiUInt32 or MiUtf32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
                MiSingle => BinaryPrimitives.ReadSingleLittleEndian(e),
                MiDouble => BinaryPrimitives.ReadDoubleLittleEndian(e),
                MiInt64 => BinaryPrimitives.ReadInt64LittleEndian(e),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(e),
            };
        }
        return r;
    }
}
