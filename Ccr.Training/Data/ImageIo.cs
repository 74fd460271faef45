using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Ccr.Training.Data;

/// <summary>
/// Image files through ImageSharp 2.1: RGB images to (3, H, W) floats, label PNGs to class indices,
/// and the writers that the SynthRooms cache and <see cref="PredictionWriter"/> use. Every failure
/// becomes a <see cref="DataFileException"/> naming the file.
/// </summary>
public static class ImageIo
{
    /// <summary>Reads a JPEG/PNG as (3, H, W) RGB in [0, 1].</summary>
    public static float[] LoadRgb(string path, out int height, out int width)
    {
        using var img = Open<Rgb24>(path);
        height = img.Height;
        width = img.Width;
        int h = height, w = width, n = h * w;
        var r = new float[3 * n];
        img.ProcessPixelRows(acc =>
        {
            for (int y = 0; y < h; y++)
            {
                var row = acc.GetRowSpan(y);
                for (int x = 0; x < w; x++)
                {
                    r[y * w + x] = row[x].R / 255f;
                    r[n + y * w + x] = row[x].G / 255f;
                    r[2 * n + y * w + x] = row[x].B / 255f;
                }
            }
        });
        return r;
    }

    /// <summary>
    /// Reads a label PNG as (H, W) integers, as PIL's <c>np.array(Image.open(path))</c> does (what the
    /// reference evaluations call): palette PNGs give their raw indices, whatever the palette
    /// (PASCAL VOC's, or another framework's colours; <see cref="PngPalette"/>); grayscale images
    /// give their values. A colour (RGB) image is an error.
    /// </summary>
    public static int[] LoadLabel(string path, out int height, out int width)
    {
        if (!File.Exists(path)) throw new DataFileException(path, "file not found");
        byte[] bytes = File.ReadAllBytes(path);
        if (PngPalette.IsPalettePng(bytes))
        {
            try { return PngPalette.ReadIndices(bytes, out height, out width, out _); }
            catch (Exception e) when (e is InvalidDataException or OverflowException)
            {
                throw new DataFileException(path, $"corrupt palette PNG ({e.Message})", e);
            }
        }
        using var img = Open<Rgb24>(path, bytes);
        height = img.Height;
        width = img.Width;
        int h = height, w = width;
        var r = new int[h * w];
        string? bad = null;
        img.ProcessPixelRows(acc =>
        {
            for (int y = 0; y < h; y++)
            {
                var row = acc.GetRowSpan(y);
                for (int x = 0; x < w; x++)
                {
                    var p = row[x];
                    if (p.R != p.G || p.G != p.B) { bad ??= $"colour pixel ({x},{y}) in a grayscale label"; continue; }
                    r[y * w + x] = p.R;
                }
            }
        });
        if (bad != null) throw new DataFileException(path, bad);
        return r;
    }

    /// <summary>Reads any image as (H, W, 3) bytes, for normals PNGs (n = 2 v / 255 - 1).</summary>
    public static byte[] LoadRgbBytes(string path, out int height, out int width)
    {
        using var img = Open<Rgb24>(path);
        height = img.Height;
        width = img.Width;
        var r = new byte[height * width * 3];
        img.CopyPixelDataTo(r);
        return r;
    }

    /// <summary>Writes (H, W) values 0..255 as an 8-bit grayscale PNG.</summary>
    public static void SaveGray(string path, ReadOnlySpan<byte> pixels, int height, int width)
    {
        if (pixels.Length != height * width) throw new ArgumentException($"{path}: {pixels.Length} pixels for {height}x{width}");
        PngWriter.Write(path, pixels, height, width, 1);
    }

    /// <summary>Writes (H, W, 3) interleaved bytes as an RGB PNG.</summary>
    public static void SaveRgb(string path, ReadOnlySpan<byte> hwc, int height, int width)
    {
        if (hwc.Length != height * width * 3) throw new ArgumentException($"{path}: {hwc.Length} bytes for {height}x{width}x3");
        PngWriter.Write(path, hwc, height, width, 3);
    }

    /// <summary>Writes (3, H, W) RGB in [0, 1] as an RGB PNG (rounded, clamped).</summary>
    public static void SaveRgbPlanar(string path, ReadOnlySpan<float> chw, int height, int width)
    {
        int n = height * width;
        var b = new byte[3 * n];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < n; i++) b[3 * i + c] = ToByte(chw[c * n + i] * 255f);
        SaveRgb(path, b, height, width);
    }

    public static byte ToByte(float v) =>
        v >= 255f ? (byte)255 : v > 0f ? (byte)MathF.Round(v, MidpointRounding.AwayFromZero) : (byte)0;

    /// <summary>The PASCAL VOC colour map: bits of the index spread over the high bits of R, G, B.</summary>
    public static (byte R, byte G, byte B) VocColor(int index)
    {
        int r = 0, g = 0, b = 0, c = index;
        for (int j = 0; j < 8; j++)
        {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
            c >>= 3;
        }
        return ((byte)r, (byte)g, (byte)b);
    }

    private static Image<T> Open<T>(string path, byte[]? bytes = null) where T : unmanaged, IPixel<T>
    {
        if (bytes == null && !File.Exists(path)) throw new DataFileException(path, "file not found");
        try { return bytes != null ? Image.Load<T>(bytes) : Image.Load<T>(path); }
        catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException or ImageFormatException or NotSupportedException)
        {
            throw new DataFileException(path, $"corrupt or unsupported image ({e.Message})", e);
        }
    }
}
