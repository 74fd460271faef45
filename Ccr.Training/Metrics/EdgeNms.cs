namespace Ccr.Training.Metrics;

/// <summary>
/// Non-maximum suppression of a soft edge map as the structured-edge toolbox's edgesNms does it
/// (what SEISM-based evaluations run first): the orientation comes from second derivatives of the
/// map smoothed by a triangle filter of radius 4, O = atan(Oyy sign(-Oxy) / (Oxx + 1e-5)) mod pi;
/// a pixel is kept when its value times 1.01 is at least the bilinearly interpolated values one
/// pixel away on both sides along O. Unlike edgesNms there is no 5-pixel border ramp: label edges
/// reach the border, and a prediction equal to the label must keep all of them.
/// </summary>
public static class EdgeNms
{
    public static float[] Apply(ReadOnlySpan<float> e, int h, int w, int radius = 1, float multiplier = 1.01f)
    {
        var smooth = ConvTri(e, h, w, 4);
        var (ox, oy) = Gradient(smooth, h, w);
        var (oxx, _) = Gradient(ox, h, w);
        var (oxy, oyy) = Gradient(oy, h, w);
        var r = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                float v = e[i];
                if (v == 0) continue;
                double o = Math.Atan(oyy[i] * Math.Sign(-oxy[i]) / (oxx[i] + 1e-5));
                o %= Math.PI;
                if (o < 0) o += Math.PI;
                double c = Math.Cos(o), s = Math.Sin(o);
                float ev = v * multiplier;
                bool keep = true;
                for (int d = -radius; d <= radius && keep; d++)
                    if (d != 0 && ev < Interp(e, h, w, x + d * c, y + d * s)) keep = false;
                if (keep) r[i] = v;
            }
        return r;
    }

    private static float Interp(ReadOnlySpan<float> e, int h, int w, double x, double y)
    {
        x = Math.Clamp(x, 0, w - 1.001);
        y = Math.Clamp(y, 0, h - 1.001);
        int x0 = (int)x, y0 = (int)y, x1 = Math.Min(x0 + 1, w - 1), y1 = Math.Min(y0 + 1, h - 1);
        double dx = x - x0, dy = y - y0;
        return (float)(e[y0 * w + x0] * (1 - dx) * (1 - dy) + e[y0 * w + x1] * dx * (1 - dy)
            + e[y1 * w + x0] * (1 - dx) * dy + e[y1 * w + x1] * dx * dy);
    }

    /// <summary>Separable triangle filter of radius r (weights 1..r+1..1), symmetric borders.</summary>
    public static float[] ConvTri(ReadOnlySpan<float> e, int h, int w, int r)
    {
        var k = new float[2 * r + 1];
        float norm = (r + 1) * (r + 1);
        for (int i = 0; i <= 2 * r; i++) k[i] = (r + 1 - Math.Abs(i - r)) / norm;
        var tmp = new float[h * w];
        var res = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float acc = 0;
                for (int j = -r; j <= r; j++) acc += k[j + r] * e[y * w + Reflect(x + j, w)];
                tmp[y * w + x] = acc;
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float acc = 0;
                for (int j = -r; j <= r; j++) acc += k[j + r] * tmp[Reflect(y + j, h) * w + x];
                res[y * w + x] = acc;
            }
        return res;
    }

    private static int Reflect(int i, int n)
    {
        while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - i - 1;
        return i;
    }

    /// <summary>MATLAB's gradient: central differences inside, one-sided at the borders; (d/dx, d/dy).</summary>
    public static (float[] Gx, float[] Gy) Gradient(float[] f, int h, int w)
    {
        var gx = new float[h * w];
        var gy = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                gx[i] = w == 1 ? 0 : x == 0 ? f[i + 1] - f[i] : x == w - 1 ? f[i] - f[i - 1] : (f[i + 1] - f[i - 1]) / 2;
                gy[i] = h == 1 ? 0 : y == 0 ? f[i + w] - f[i] : y == h - 1 ? f[i] - f[i - w] : (f[i + w] - f[i - w]) / 2;
            }
        return (gx, gy);
    }
}
