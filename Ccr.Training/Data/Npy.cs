using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Ccr.Training.Data;

/// <summary>
/// An array read from a NumPy <c>.npy</c> file: its shape and its values converted to float64
/// (exact for every supported dtype: float32/64, uint8, int32, uint16, int64 up to 2^53).
/// Values are in C order.
/// </summary>
public sealed class NpyArray
{
    public required int[] Shape { get; init; }
    public required string DType { get; init; }
    public required double[] Data { get; init; }

    public int Count => Data.Length;

    public float[] ToFloat()
    {
        var r = new float[Data.Length];
        for (int i = 0; i < r.Length; i++) r[i] = (float)Data[i];
        return r;
    }

    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>
/// Minimal reader and writer of NumPy's .npy format (versions 1-3): little- or big-endian
/// float32, float64, uint8, int8, uint16, int16, int32, int64, bool; C order only (a Fortran-order
/// file is rejected with a message). The writer emits version 1.0 float32 / uint8 / int32.
/// </summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")]
    private static partial Regex DescrRx();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRx();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRx();

    public static NpyArray Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException e) { throw new DataFileException(path, "file not found", e); }
        catch (DirectoryNotFoundException e) { throw new DataFileException(path, "file not found", e); }
        return Parse(bytes, path);
    }

    /// <summary>Reads and checks that the shape is exactly <paramref name="shape"/>.</summary>
    public static NpyArray Read(string path, params int[] shape)
    {
        var a = Read(path);
        if (!a.Shape.SequenceEqual(shape))
            throw new DataFileException(path,
                $"wrong shape {a.ShapeText}, expected ({string.Join(", ", shape)})");
        return a;
    }

    public static NpyArray Parse(byte[] b, string path)
    {
        if (b.Length < 10 || !b.AsSpan(0, 6).SequenceEqual(Magic))
            throw new DataFileException(path, "not a .npy file (bad magic)");
        int major = b[6];
        int headerLen, start;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)); start = 10; }
        else if (major is 2 or 3)
        {
            if (b.Length < 12) throw new DataFileException(path, "truncated .npy header");
            headerLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8)); start = 12;
        }
        else throw new DataFileException(path, $"unsupported .npy version {major}");
        if (start + headerLen > b.Length) throw new DataFileException(path, "truncated .npy header");
        string header = Encoding.Latin1.GetString(b, start, headerLen);
        var d = DescrRx().Match(header);
        var f = FortranRx().Match(header);
        var s = ShapeRx().Match(header);
        if (!d.Success || !f.Success || !s.Success)
            throw new DataFileException(path, $"malformed .npy header '{header.Trim()}'");
        if (f.Groups[1].Value == "True")
            throw new DataFileException(path, "Fortran-order .npy is not supported (save with C order)");
        int[] shape = s.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.Parse(x.TrimEnd('L'), CultureInfo.InvariantCulture)).ToArray();
        long count = 1;
        foreach (int x in shape) count *= x;
        string descr = d.Groups[1].Value;
        bool big = descr[0] == '>';
        string kind = descr.TrimStart('<', '>', '|', '=');
        int size = kind switch
        {
            "f4" or "i4" or "u4" => 4, "f8" or "i8" or "u8" => 8, "u1" or "i1" or "b1" => 1,
            "u2" or "i2" => 2,
            _ => throw new DataFileException(path, $"unsupported .npy dtype '{descr}'"),
        };
        int off = start + headerLen;
        if (b.Length - off < count * size)
            throw new DataFileException(path,
                $"truncated .npy data: {b.Length - off} bytes for shape ({string.Join(", ", shape)}) of {descr}");
        var data = new double[count];
        var span = b.AsSpan(off);
        Span<byte> tmp = stackalloc byte[8];
        for (long i = 0; i < count; i++)
        {
            var e = span.Slice((int)(i * size), size);
            e.CopyTo(tmp);
            if (big && size > 1) tmp[..size].Reverse();
            data[i] = kind switch
            {
                "f4" => BinaryPrimitives.ReadSingleLittleEndian(tmp),
                "f8" => BinaryPrimitives.ReadDoubleLittleEndian(tmp),
                "i4" => BinaryPrimitives.ReadInt32LittleEndian(tmp),
                "u4" => BinaryPrimitives.ReadUInt32LittleEndian(tmp),
                "i8" => BinaryPrimitives.ReadInt64LittleEndian(tmp),
                "u8" => BinaryPrimitives.ReadUInt64LittleEndian(tmp),
                "i2" => BinaryPrimitives.ReadInt16LittleEndian(tmp),
                "u2" => BinaryPrimitives.ReadUInt16LittleEndian(tmp),
                "i1" => (sbyte)tmp[0],
                _ => tmp[0],
            };
        }
        return new NpyArray { Shape = shape, DType = descr, Data = data };
    }

    public static void WriteFloat32(string path, ReadOnlySpan<float> data, params int[] shape)
    {
        var body = new byte[data.Length * 4];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(body.AsSpan(4 * i), data[i]);
        Write(path, "<f4", body, data.Length, shape);
    }

    public static void WriteUInt8(string path, ReadOnlySpan<byte> data, params int[] shape) =>
        Write(path, "|u1", data.ToArray(), data.Length, shape);

    public static void WriteInt32(string path, ReadOnlySpan<int> data, params int[] shape)
    {
        var body = new byte[data.Length * 4];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(4 * i), data[i]);
        Write(path, "<i4", body, data.Length, shape);
    }

    private static void Write(string path, string descr, byte[] body, int count, int[] shape)
    {
        long n = 1;
        foreach (int x in shape) n *= x;
        if (n != count) throw new ArgumentException($"{path}: {count} values do not fill shape ({string.Join(", ", shape)})");
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
        int total = 10 + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        string header = dict + new string(' ', pad) + "\n";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var fs = File.Create(path);
        fs.Write(Magic);
        fs.WriteByte(1); fs.WriteByte(0);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        fs.Write(len);
        fs.Write(Encoding.Latin1.GetBytes(header));
        fs.Write(body);
    }
}
