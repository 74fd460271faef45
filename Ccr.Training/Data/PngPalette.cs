using System.Buffers.Binary;
using System.IO.Compression;

namespace Ccr.Training.Data;

/// <summary>
/// The raw palette indices of a palette PNG (colour type 3), as PIL's <c>np.array(Image.open(p))</c>
/// gives them: the reference evaluations read label and class-index prediction PNGs that way, whatever
/// colours the palette holds. ImageSharp only hands out decoded colours, so this is a small decoder of
/// its own: IHDR, PLTE and the concatenated IDAT chunks, zlib inflate, the five PNG row filters
/// (1 byte per pixel for filtering), bit depths 1, 2, 4 and 8, plain or Adam7-interlaced rows.
/// </summary>
public static class PngPalette
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>True when the bytes are a PNG whose IHDR says colour type 3 (palette).</summary>
    public static bool IsPalettePng(ReadOnlySpan<byte> b) =>
        b.Length >= 33 && b[..8].SequenceEqual(Signature) && b.Slice(12, 4).SequenceEqual("IHDR"u8) && b[25] == 3;

    /// <summary>
    /// The (H, W) indices of a palette PNG, and its palette as (R, G, B) triples. Throws
    /// <see cref="InvalidDataException"/> on a malformed file.
    /// </summary>
    public static int[] ReadIndices(byte[] b, out int height, out int width, out byte[] palette)
    {
        if (!IsPalettePng(b)) throw new InvalidDataException("not a palette PNG");
        int pos = 8, bitDepth = 0, interlace = 0;
        width = height = 0;
        palette = [];
        using var idat = new MemoryStream();
        while (pos + 12 <= b.Length)
        {
            int len = checked((int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos)));
            if (len < 0 || pos + 12 + len > b.Length) throw new InvalidDataException($"chunk at byte {pos} runs past the end");
            var type = b.AsSpan(pos + 4, 4);
            var data = b.AsSpan(pos + 8, len);
            if (type.SequenceEqual("IHDR"u8))
            {
                width = checked((int)BinaryPrimitives.ReadUInt32BigEndian(data));
                height = checked((int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]));
                bitDepth = data[8];
                interlace = data[12];
                if (bitDepth is not (1 or 2 or 4 or 8)) throw new InvalidDataException($"palette bit depth {bitDepth}");
                if (interlace > 1) throw new InvalidDataException($"interlace method {interlace}");
            }
            else if (type.SequenceEqual("PLTE"u8)) palette = data.ToArray();
            else if (type.SequenceEqual("IDAT"u8)) idat.Write(data);
            else if (type.SequenceEqual("IEND"u8)) break;
            pos += 12 + len;
        }
        if (width <= 0 || height <= 0) throw new InvalidDataException($"image size {width}x{height}");
        byte[] raw;
        using (var z = new ZLibStream(new MemoryStream(idat.ToArray()), CompressionMode.Decompress))
        using (var ms = new MemoryStream())
        {
            z.CopyTo(ms);
            raw = ms.ToArray();
        }
        var r = new int[height * width];
        int offset = 0;
        if (interlace == 0) offset = DecodePass(raw, offset, r, width, bitDepth, 0, 0, 1, 1, width, height);
        else
        {
            // Adam7: (x0, y0, dx, dy) of the seven passes
            ReadOnlySpan<int> p = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
            for (int k = 0; k < 7; k++)
            {
                int x0 = p[4 * k], y0 = p[4 * k + 1], dx = p[4 * k + 2], dy = p[4 * k + 3];
                int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
                if (pw > 0 && ph > 0) offset = DecodePass(raw, offset, r, width, bitDepth, x0, y0, dx, dy, pw, ph);
            }
        }
        return r;
    }

    /// <summary>Unfilters ph rows of pw pixels starting at raw[offset] and scatters the indices into
    /// the image at (y0 + dy * row, x0 + dx * col); returns the offset after the pass.</summary>
    static int DecodePass(byte[] raw, int offset, int[] image, int width, int bitDepth,
                          int x0, int y0, int dx, int dy, int pw, int ph)
    {
        int rowBytes = (pw * bitDepth + 7) / 8;
        if (offset + (long)ph * (rowBytes + 1) > raw.Length)
            throw new InvalidDataException($"image data holds {raw.Length} bytes, too few for the rows");
        var prev = new byte[rowBytes];
        var cur = new byte[rowBytes];
        int mask = (1 << bitDepth) - 1;
        for (int row = 0; row < ph; row++)
        {
            int filter = raw[offset++];
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i > 0 ? cur[i - 1] : 0, up = prev[i], c = i > 0 ? prev[i - 1] : 0;
                int x = raw[offset + i];
                cur[i] = (byte)(filter switch
                {
                    0 => x,
                    1 => x + a,
                    2 => x + up,
                    3 => x + ((a + up) >> 1),
                    4 => x + Paeth(a, up, c),
                    _ => throw new InvalidDataException($"row filter {filter}"),
                });
            }
            offset += rowBytes;
            int y = y0 + row * dy;
            for (int col = 0; col < pw; col++)
            {
                int bit = col * bitDepth;
                int v = (cur[bit >> 3] >> (8 - bitDepth - (bit & 7))) & mask;
                image[y * width + x0 + col * dx] = v;
            }
            (prev, cur) = (cur, prev);
        }
        return offset;
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
