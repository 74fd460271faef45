namespace Ccr.Train.Data;

/// <summary>Label-map operations shared by datasets: PASCAL's edge extraction and thinning.</summary>
public static class LabelOps
{
    /// <summary>
    /// PASCAL-Context edges as MTI-Net computes them: thin(|Laplacian(LabelMap)| &gt; 0), where the
    /// Laplacian is OpenCV's default 3x3 kernel [0 1 0; 1 -4 1; 0 1 0] with reflect-101 borders.
    /// The thinning is Zhang-Suen (skimage's thin uses a Guo-Hall-style lookup table; both reduce
    /// the 2-pixel-wide boundary band to one pixel, results can differ on a few pixels).
    /// Returns (H, W) 0/1.
    /// </summary>
    public static float[] EdgeFromLabelMap(int[] labels, int height, int width)
    {
        var band = new bool[height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int c = labels[y * width + x];
                long lap = (long)At(labels, height, width, y - 1, x) + At(labels, height, width, y + 1, x)
                    + At(labels, height, width, y, x - 1) + At(labels, height, width, y, x + 1) - 4L * c;
                band[y * width + x] = lap != 0;
            }
        Thin(band, height, width);
        var e = new float[band.Length];
        for (int i = 0; i < e.Length; i++) e[i] = band[i] ? 1f : 0f;
        return e;
    }

    private static int At(int[] l, int h, int w, int y, int x)
    {
        // reflect-101: -1 -> 1, h -> h - 2 (a single row or column reflects onto itself).
        if (y < 0) y = h > 1 ? -y : 0; else if (y >= h) y = h > 1 ? 2 * h - 2 - y : 0;
        if (x < 0) x = w > 1 ? -x : 0; else if (x >= w) x = w > 1 ? 2 * w - 2 - x : 0;
        return l[y * w + x];
    }

    /// <summary>Zhang-Suen thinning of a binary mask, in place (pixels outside count as 0).</summary>
    public static void Thin(bool[] m, int height, int width)
    {
        var remove = new List<int>();
        var p = new bool[8];
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int pass = 0; pass < 2; pass++)
            {
                remove.Clear();
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        if (!m[y * width + x]) continue;
                        // Neighbours p2..p9 clockwise from north.
                        p[0] = Get(m, height, width, y - 1, x); p[1] = Get(m, height, width, y - 1, x + 1);
                        p[2] = Get(m, height, width, y, x + 1); p[3] = Get(m, height, width, y + 1, x + 1);
                        p[4] = Get(m, height, width, y + 1, x); p[5] = Get(m, height, width, y + 1, x - 1);
                        p[6] = Get(m, height, width, y, x - 1); p[7] = Get(m, height, width, y - 1, x - 1);
                        int b = 0, a = 0;
                        for (int k = 0; k < 8; k++)
                        {
                            if (p[k]) b++;
                            if (!p[k] && p[(k + 1) % 8]) a++;
                        }
                        if (b < 2 || b > 6 || a != 1) continue;
                        bool ok = pass == 0
                            ? !(p[0] && p[2] && p[4]) && !(p[2] && p[4] && p[6])
                            : !(p[0] && p[2] && p[6]) && !(p[0] && p[4] && p[6]);
                        if (ok) remove.Add(y * width + x);
                    }
                foreach (int i in remove) m[i] = false;
                if (remove.Count > 0) changed = true;
            }
        }
    }

    private static bool Get(bool[] m, int h, int w, int y, int x) =>
        y >= 0 && y < h && x >= 0 && x < w && m[y * w + x];
}
