using System.Buffers.Binary;

namespace Ccr.Training.Reporting;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, and TFRecord's masked form
/// of it. TFRecord masks a CRC (rotate right by 15, add 0xA282EAD8) because a CRC of data that
/// itself holds CRCs is weak.
/// </summary>
public static class Crc32C
{
    static readonly uint[] Table = MakeTable();

    static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: per record
/// uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes, the data, uint32 masked
/// CRC-32C of the data.
/// </summary>
public static class TfRecord
{
    public static void Write(Stream s, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head[8..], Crc32C.Mask(Crc32C.Compute(head[..8])));
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, Crc32C.Mask(Crc32C.Compute(data)));
        s.Write(head);
        s.Write(data);
        s.Write(tail);
    }

    /// <summary>One record as stored: the data and both masked CRCs as read from the file.</summary>
    public sealed record Record(byte[] Data, ulong Length, uint LengthCrc, uint DataCrc);

    /// <summary>Every record of a file, CRCs unchecked (callers check them: the tests do so against
    /// an implementation of their own). A truncated last record (a writer killed mid-write, or one
    /// still writing) ends the list, as TensorBoard's reader treats it.</summary>
    public static List<Record> ReadAll(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var r = new List<Record>();
        int at = 0;
        while (at + 12 <= bytes.Length)
        {
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            uint lenCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8));
            if (len > int.MaxValue || at + 12 + (long)len + 4 > bytes.Length) break;
            var data = bytes.AsSpan(at + 12, (int)len).ToArray();
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)len));
            r.Add(new Record(data, len, lenCrc, dataCrc));
            at += 16 + (int)len;
        }
        return r;
    }

    /// <summary>The records of a file with both CRCs checked; a mismatch names the record.</summary>
    public static List<byte[]> ReadChecked(string path)
    {
        var r = new List<byte[]>();
        Span<byte> head = stackalloc byte[8];
        foreach (var (rec, i) in ReadAll(path).Select((x, i) => (x, i)))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(head, rec.Length);
            if (Crc32C.Mask(Crc32C.Compute(head)) != rec.LengthCrc) throw new InvalidDataException($"{path}: record {i}: length CRC mismatch");
            if (Crc32C.Mask(Crc32C.Compute(rec.Data)) != rec.DataCrc) throw new InvalidDataException($"{path}: record {i}: data CRC mismatch");
            r.Add(rec.Data);
        }
        return r;
    }
}
