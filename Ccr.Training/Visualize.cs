using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>
/// Colour pictures of predictions, for people: a class palette (PASCAL VOC's) for semseg and parts,
/// a perceptual colour map for depth (near = yellow, far = dark blue), RGB = (n + 1) / 2 for
/// normals, grey levels for edge and saliency probabilities. Tiles are placed side by side.
/// </summary>
public static class Visualize
{
    /// <summary>(H, W, 3) bytes of one task's prediction.</summary>
    public static byte[] Colour(string task, object prediction, int h, int w, float depthMax)
    {
        int hw = h * w;
        var rgb = new byte[hw * 3];
        switch (prediction)
        {
            case int[] cls:
                for (int i = 0; i < hw; i++)
                {
                    var (r, g, b) = ImageIo.VocColor(cls[i]);
                    rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b;
                }
                break;
            case float[] f when task == TaskNames.Normals:
                for (int i = 0; i < hw; i++)
                {
                    float x = f[i], y = f[hw + i], z = f[2 * hw + i];
                    float n = MathF.Max(MathF.Sqrt(x * x + y * y + z * z), 1e-12f);
                    rgb[3 * i] = Unit((x / n + 1) / 2);
                    rgb[3 * i + 1] = Unit((y / n + 1) / 2);
                    rgb[3 * i + 2] = Unit((z / n + 1) / 2);
                }
                break;
            case float[] f when task == TaskNames.Depth:
                for (int i = 0; i < hw; i++)
                {
                    var (r, g, b) = Viridis(1f - Math.Clamp(f[i] / depthMax, 0f, 1f));
                    rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b;
                }
                break;
            case float[] f:
                for (int i = 0; i < hw; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Unit(f[i]);
                break;
            default:
                throw new ArgumentException($"no picture for a {task} prediction of type {prediction.GetType().Name}");
        }
        return rgb;
    }

    /// <summary>The input image (3, H, W) in [0, 1] as (H, W, 3) bytes.</summary>
    public static byte[] Image(float[] chw, int h, int w)
    {
        int hw = h * w;
        var rgb = new byte[hw * 3];
        for (int i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++) rgb[3 * i + c] = Unit(chw[c * hw + i]);
        return rgb;
    }

    /// <summary>Tiles of equal size (H, W, 3) side by side, with a 4-pixel white gap.</summary>
    public static byte[] SideBySide(IReadOnlyList<byte[]> tiles, int h, int w, out int width)
    {
        const int gap = 4;
        width = tiles.Count * w + (tiles.Count - 1) * gap;
        var dst = new byte[h * width * 3];
        Array.Fill(dst, (byte)255);
        for (int t = 0; t < tiles.Count; t++)
            for (int y = 0; y < h; y++)
                Array.Copy(tiles[t], y * w * 3, dst, (y * width + t * (w + gap)) * 3, w * 3);
        return dst;
    }

    /// <summary>A value in [0, 1] as a byte (ImageIo.ToByte takes 0..255).</summary>
    static byte Unit(float v) => ImageIo.ToByte(v * 255f);

    // Five control points of matplotlib's viridis, linearly interpolated.
    static readonly (float R, float G, float B)[] ViridisStops =
        [(0.267f, 0.005f, 0.329f), (0.229f, 0.322f, 0.545f), (0.128f, 0.567f, 0.551f), (0.369f, 0.789f, 0.383f), (0.993f, 0.906f, 0.144f)];

    static (byte, byte, byte) Viridis(float t)
    {
        float s = t * (ViridisStops.Length - 1);
        int i = Math.Min((int)s, ViridisStops.Length - 2);
        float f = s - i;
        var a = ViridisStops[i]; var b = ViridisStops[i + 1];
        return (Unit(a.R + f * (b.R - a.R)), Unit(a.G + f * (b.G - a.G)), Unit(a.B + f * (b.B - a.B)));
    }
}
