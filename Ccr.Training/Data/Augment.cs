namespace Ccr.Training.Data;

/// <summary>Training augmentation settings; the defaults are the reference code's.</summary>
public sealed record AugmentOptions
{
    /// <summary>Crop size after scaling; smaller images are padded (labels with ignore).</summary>
    public int CropHeight { get; init; } = 480;
    public int CropWidth { get; init; } = 640;
    public double ScaleMin { get; init; } = 0.5;
    public double ScaleMax { get; init; } = 2.0;
    public bool Flip { get; init; } = true;
    public bool Photometric { get; init; } = true;
}

/// <summary>
/// Augmentation as the ATRC / MTI-Net training pipelines do it: random scale (image bilinear,
/// labels nearest, depth divided by the scale), random crop with padding (image 0, every label
/// ignore / invalid), horizontal flip (normals' x negated), photometric distortion (mmseg's
/// PhotoMetricDistortion: brightness, contrast, saturation, hue, each with probability 0.5) and
/// finally ImageNet normalisation when batches are stacked. All randomness comes from the
/// <see cref="Rng"/> the caller passes, a pure function of (seed, epoch, index).
/// </summary>
public static class Augment
{
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    public static Sample Apply(Sample s, AugmentOptions o, ref KeyedRng rng)
    {
        double scale = rng.Uniform(o.ScaleMin, o.ScaleMax);
        s = Scale(s, scale);
        int top = rng.NextInt(Math.Max(1, s.Height - o.CropHeight + 1));
        int left = rng.NextInt(Math.Max(1, s.Width - o.CropWidth + 1));
        s = Crop(s, top, left, o.CropHeight, o.CropWidth);
        PascalLabels.IgnoreUnannotatedParts(s.Parts);  // a crop without part pixels: ATRC's AddIgnoreRegions
        if (o.Flip && rng.Chance(0.5)) s = FlipHorizontal(s);
        if (o.Photometric) Photometric(s.Image, s.Height, s.Width, ref rng);
        return s;
    }

    /// <summary>Resizes by s: image bilinear (half-pixel centres), labels nearest, depth / s.</summary>
    public static Sample Scale(Sample s, double scale)
    {
        int h = Math.Max(1, (int)Math.Round(s.Height * scale)), w = Math.Max(1, (int)Math.Round(s.Width * scale));
        return Resize(s, h, w, depthFactor: (float)(1.0 / scale));
    }

    public static Sample Resize(Sample s, int h, int w, float depthFactor = 1f)
    {
        int sh = s.Height, sw = s.Width, n = h * w;
        var image = new float[3 * n];
        for (int c = 0; c < 3; c++) Bilinear(s.Image.AsSpan(c * sh * sw, sh * sw), sh, sw, image.AsSpan(c * n, n), h, w);
        // Nearest source index of each target pixel (PyTorch / OpenCV nearest: floor(dst * src / dst_size)).
        var map = new int[n];
        for (int y = 0; y < h; y++)
        {
            int sy = Math.Min(sh - 1, (int)((long)y * sh / h));
            for (int x = 0; x < w; x++) map[y * w + x] = sy * sw + Math.Min(sw - 1, (int)((long)x * sw / w));
        }
        var r = new Sample { Id = s.Id, Height = h, Width = w, Image = image };
        r.Semseg = Gather(s.Semseg, map, 1, sh * sw);
        r.Parts = Gather(s.Parts, map, 1, sh * sw);
        r.Saliency = Gather(s.Saliency, map, 1, sh * sw);
        r.Edge = Gather(s.Edge, map, 1, sh * sw);
        r.Normals = Gather(s.Normals, map, 3, sh * sw);
        r.Depth = Gather(s.Depth, map, 1, sh * sw);
        if (r.Depth != null && depthFactor != 1f)
            for (int i = 0; i < n; i++) r.Depth[i] *= depthFactor;
        return r;
    }

    private static T[]? Gather<T>(T[]? src, int[] map, int channels, int srcPlane)
    {
        if (src == null) return null;
        int n = map.Length;
        var r = new T[channels * n];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < n; i++) r[c * n + i] = src[c * srcPlane + map[i]];
        return r;
    }

    /// <summary>Bilinear resize with half-pixel centres (align_corners = False), edge-clamped.</summary>
    public static void Bilinear(ReadOnlySpan<float> src, int sh, int sw, Span<float> dst, int h, int w)
    {
        double fy = (double)sh / h, fx = (double)sw / w;
        for (int y = 0; y < h; y++)
        {
            double syf = Math.Max(0, (y + 0.5) * fy - 0.5);
            int y0 = Math.Min((int)syf, sh - 1), y1 = Math.Min(y0 + 1, sh - 1);
            float wy = (float)(syf - y0);
            for (int x = 0; x < w; x++)
            {
                double sxf = Math.Max(0, (x + 0.5) * fx - 0.5);
                int x0 = Math.Min((int)sxf, sw - 1), x1 = Math.Min(x0 + 1, sw - 1);
                float wx = (float)(sxf - x0);
                float top = src[y0 * sw + x0] * (1 - wx) + src[y0 * sw + x1] * wx;
                float bot = src[y1 * sw + x0] * (1 - wx) + src[y1 * sw + x1] * wx;
                dst[y * w + x] = top * (1 - wy) + bot * wy;
            }
        }
    }

    /// <summary>
    /// The window [top, top + ch) x [left, left + cw); where it leaves the image (an image smaller
    /// than the crop) the image is 0 and every label is ignore (255) or invalid (depth 0, normals 0).
    /// </summary>
    public static Sample Crop(Sample s, int top, int left, int ch, int cw)
    {
        int n = ch * cw, sn = s.Pixels;
        var r = new Sample { Id = s.Id, Height = ch, Width = cw, Image = new float[3 * n] };
        if (s.Semseg != null) r.Semseg = Filled(n, Sample.Ignore);
        if (s.Parts != null) r.Parts = Filled(n, Sample.Ignore);
        if (s.Saliency != null) r.Saliency = Filled(n, Sample.Ignore);
        if (s.Edge != null) r.Edge = Filled(n, (float)Sample.Ignore);
        if (s.Depth != null) r.Depth = new float[n];
        if (s.Normals != null) r.Normals = new float[3 * n];
        for (int y = 0; y < ch; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= s.Height) continue;
            for (int x = 0; x < cw; x++)
            {
                int sx = left + x;
                if (sx < 0 || sx >= s.Width) continue;
                int i = y * cw + x, si = sy * s.Width + sx;
                for (int c = 0; c < 3; c++) r.Image[c * n + i] = s.Image[c * sn + si];
                if (r.Semseg != null) r.Semseg[i] = s.Semseg![si];
                if (r.Parts != null) r.Parts[i] = s.Parts![si];
                if (r.Saliency != null) r.Saliency[i] = s.Saliency![si];
                if (r.Edge != null) r.Edge[i] = s.Edge![si];
                if (r.Depth != null) r.Depth[i] = s.Depth![si];
                if (r.Normals != null) for (int c = 0; c < 3; c++) r.Normals[c * n + i] = s.Normals![c * sn + si];
            }
        }
        return r;
    }

    private static T[] Filled<T>(int n, T v)
    {
        var a = new T[n];
        Array.Fill(a, v);
        return a;
    }

    /// <summary>Mirrors left-right; the normals' x component changes sign.</summary>
    public static Sample FlipHorizontal(Sample s)
    {
        int h = s.Height, w = s.Width, n = h * w;
        var map = new int[n];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) map[y * w + x] = y * w + (w - 1 - x);
        var r = new Sample
        {
            Id = s.Id, Height = h, Width = w, Image = Gather(s.Image, map, 3, n)!,
            Semseg = Gather(s.Semseg, map, 1, n), Parts = Gather(s.Parts, map, 1, n),
            Saliency = Gather(s.Saliency, map, 1, n), Edge = Gather(s.Edge, map, 1, n),
            Depth = Gather(s.Depth, map, 1, n), Normals = Gather(s.Normals, map, 3, n),
        };
        if (r.Normals != null)
            for (int i = 0; i < n; i++) r.Normals[i] = -r.Normals[i];
        return r;
    }

    /// <summary>
    /// mmseg's PhotoMetricDistortion on [0, 1] RGB (3, H, W), in place: brightness +-32/255,
    /// contrast x[0.5, 1.5] (before or after the HSV steps, chosen at random), saturation
    /// x[0.5, 1.5], hue +-18 degrees; each step with probability 0.5; clamped to [0, 1].
    /// </summary>
    public static void Photometric(float[] img, int h, int w, ref KeyedRng rng)
    {
        int n = h * w;
        if (rng.Chance(0.5))
        {
            float delta = (float)rng.Uniform(-32, 32) / 255f;
            for (int i = 0; i < img.Length; i++) img[i] += delta;
        }
        bool contrastFirst = rng.Chance(0.5);
        if (contrastFirst) Contrast(img, ref rng);
        bool sat = rng.Chance(0.5), hue = rng.Chance(0.5);
        float satF = (float)rng.Uniform(0.5, 1.5), hueD = (float)rng.Uniform(-18, 18);
        if (sat || hue)
        {
            for (int i = 0; i < n; i++)
            {
                RgbToHsv(Math.Clamp(img[i], 0, 1), Math.Clamp(img[n + i], 0, 1), Math.Clamp(img[2 * n + i], 0, 1), out float hh, out float ss, out float vv);
                if (sat) ss = Math.Clamp(ss * satF, 0, 1);
                if (hue) { hh = (hh + hueD) % 360f; if (hh < 0) hh += 360f; }
                HsvToRgb(hh, ss, vv, out img[i], out img[n + i], out img[2 * n + i]);
            }
        }
        if (!contrastFirst) Contrast(img, ref rng);
        for (int i = 0; i < img.Length; i++) img[i] = Math.Clamp(img[i], 0f, 1f);
    }

    private static void Contrast(float[] img, ref KeyedRng rng)
    {
        if (!rng.Chance(0.5)) return;
        float a = (float)rng.Uniform(0.5, 1.5);
        for (int i = 0; i < img.Length; i++) img[i] *= a;
    }

    private static void RgbToHsv(float r, float g, float b, out float h, out float s, out float v)
    {
        float max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b)), d = max - min;
        v = max;
        s = max > 0 ? d / max : 0;
        if (d <= 0) { h = 0; return; }
        if (max == r) h = 60f * ((g - b) / d);
        else if (max == g) h = 60f * ((b - r) / d + 2);
        else h = 60f * ((r - g) / d + 4);
        if (h < 0) h += 360f;
    }

    private static void HsvToRgb(float h, float s, float v, out float r, out float g, out float b)
    {
        float c = v * s, hp = h / 60f, x = c * (1 - Math.Abs(hp % 2 - 1)), m = v - c;
        (r, g, b) = (int)hp switch
        {
            0 => (c, x, 0f), 1 => (x, c, 0f), 2 => (0f, c, x), 3 => (0f, x, c), 4 => (x, 0f, c), _ => (c, 0f, x),
        };
        r += m; g += m; b += m;
    }

    /// <summary>ImageNet normalisation of a (3, H, W) [0, 1] image into dst.</summary>
    public static void Normalize(ReadOnlySpan<float> img, Span<float> dst, int pixels)
    {
        for (int c = 0; c < 3; c++)
        {
            float m = Mean[c], inv = 1f / Std[c];
            for (int i = 0; i < pixels; i++) dst[c * pixels + i] = (img[c * pixels + i] - m) * inv;
        }
    }
}
