using System.Buffers.Binary;
using System.IO.Compression;

namespace Ccr.Training.Data;

/// <summary>
/// A minimal 8-bit grayscale / RGB PNG encoder on the runtime's native zlib. ImageSharp's managed
/// deflate made PNG encoding the bottleneck of SynthRooms generation (about 4x the render time of a
/// 96x128 sample); this writes the same pixels (filter type 0 on every row) several times faster.
/// Files are standard PNGs that any decoder, ImageSharp included, reads.
/// </summary>
public static class PngWriter
{
    private static readonly uint[] CrcTable = MakeCrcTable();

    /// <summary>channels 1 (grayscale, (H, W)) or 3 (RGB, (H, W, 3) interleaved).</summary>
    public static void Write(string path, ReadOnlySpan<byte> pixels, int height, int width, int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"{path}: {channels} channels (1 or 3)");
        if (pixels.Length != height * width * channels)
            throw new ArgumentException($"{path}: {pixels.Length} bytes for {height}x{width}x{channels}");
        int stride = width * channels;
        var raw = new byte[height * (stride + 1)];
        for (int y = 0; y < height; y++) pixels.Slice(y * stride, stride).CopyTo(raw.AsSpan(y * (stride + 1) + 1));
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(raw);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;                              // bit depth
        ihdr[9] = (byte)(channels == 1 ? 0 : 2);  // colour type: grayscale / truecolour
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        fs.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(fs, "IHDR", ihdr);
        Chunk(fs, "IDAT", z.GetBuffer().AsSpan(0, (int)z.Length));
        Chunk(fs, "IEND", []);
    }

    private static void Chunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        for (int i = 0; i < 4; i++) head[4 + i] = (byte)type[i];
        s.Write(head);
        s.Write(data);
        uint crc = Crc(0xFFFFFFFFu, head[4..]);
        crc = Crc(crc, data) ^ 0xFFFFFFFFu;
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        s.Write(tail);
    }

    private static uint Crc(uint c, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
