namespace Ccr.Training.Data;

/// <summary>Label-map operations shared by datasets: PASCAL's edge extraction and thinning.</summary>
public static class LabelOps
{
    /// <summary>
    /// PASCAL-Context edges as MTI-Net's and ATRC's loaders compute them:
    /// skimage.morphology.thin(|cv2.Laplacian(LabelMap, CV_64F)| &gt; 0). The Laplacian is OpenCV's
    /// default 3x3 kernel [0 1 0; 1 -4 1; 0 1 0] with reflect-101 borders, exact in integers; the
    /// thinning is <see cref="Thin"/>, bit-equal to scikit-image's. Returns (H, W) 0/1.
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

    /// <summary>
    /// scikit-image's <c>morphology.thin</c> (0.19), in place: Guo and Hall's two-subiteration
    /// parallel thinning (Comm. ACM 32(3), 1989). Each subiteration codes every pixel's 8
    /// neighbours as a byte (bit 0 east, then counter-clockwise: 1 north-east, 2 north, 3
    /// north-west, 4 west, 5 south-west, 6 south, 7 south-east; outside the image counts 0), all
    /// from the map as it was before the subiteration, and deletes the set pixels whose code the
    /// subiteration's table marks; iterations repeat until one deletes nothing.
    /// </summary>
    public static void Thin(bool[] m, int height, int width)
    {
        if (m.Length != height * width) throw new ArgumentException($"Thin: {m.Length} pixels for {height}x{width}");
        var deletions = new List<int>();
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var lut in new[] { ThinTables.G123, ThinTables.G123P })
            {
                deletions.Clear();
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                        if (m[y * width + x] && lut[NeighbourCode(m, height, width, y, x)]) deletions.Add(y * width + x);
                foreach (int i in deletions) m[i] = false;
                changed |= deletions.Count > 0;
            }
        }
    }

    /// <summary>The 8 neighbours of (y, x) as skimage weighs them: [[8, 4, 2], [16, 0, 1], [32, 64, 128]].</summary>
    internal static int NeighbourCode(bool[] m, int h, int w, int y, int x)
    {
        int code = 0;
        if (Get(m, h, w, y, x + 1)) code |= 1;
        if (Get(m, h, w, y - 1, x + 1)) code |= 2;
        if (Get(m, h, w, y - 1, x)) code |= 4;
        if (Get(m, h, w, y - 1, x - 1)) code |= 8;
        if (Get(m, h, w, y, x - 1)) code |= 16;
        if (Get(m, h, w, y + 1, x - 1)) code |= 32;
        if (Get(m, h, w, y + 1, x)) code |= 64;
        if (Get(m, h, w, y + 1, x + 1)) code |= 128;
        return code;
    }

    private static bool Get(bool[] m, int h, int w, int y, int x) =>
        y >= 0 && y < h && x >= 0 && x < w && m[y * w + x];
}

/// <summary>
/// The deletion tables of Guo-Hall thinning for the neighbour codes of
/// <see cref="LabelOps.NeighbourCode"/>, built from the paper's conditions (bit k of a code is
/// neighbour x_(k+1) of the paper, x1 = east, counter-clockwise):
/// G1: exactly one of the four pairs (x1..x2), (x3..x4), (x5..x6), (x7..x8) starts a run
/// (x_(2i-1) = 0 and (x_(2i) = 1 or x_(2i+1) = 1));
/// G2: min(N1, N2) is 2 or 3, N1 = Σ (x_(2k-1) or x_(2k)), N2 = Σ (x_(2k) or x_(2k+1));
/// G3 (first subiteration): (x2 or x3 or not x8) and x1 is false;
/// G3' (second): (x6 or x7 or not x4) and x5 is false.
/// A set pixel is deleted when G1, G2 and G3 (resp. G3') hold. Tests compare both tables with
/// scikit-image's G123_LUT / G123P_LUT.
/// </summary>
public static class ThinTables
{
    public static readonly bool[] G123 = Build(secondSubiteration: false);
    public static readonly bool[] G123P = Build(secondSubiteration: true);

    private static bool[] Build(bool secondSubiteration)
    {
        var t = new bool[256];
        for (int n = 0; n < 256; n++)
        {
            bool B(int i) => ((n >> (i & 7)) & 1) != 0;
            int runs = 0;
            for (int i = 0; i < 8; i += 2)
                if (!B(i) && (B(i + 1) || B(i + 2))) runs++;
            int n1 = 0, n2 = 0;
            for (int k = 1; k < 8; k += 2)
            {
                if (B(k) || B(k - 1)) n1++;
                if (B(k) || B(k + 1)) n2++;
            }
            int nMin = Math.Min(n1, n2);
            bool g3 = secondSubiteration
                ? !((B(5) || B(6) || !B(3)) && B(4))
                : !((B(1) || B(2) || !B(7)) && B(0));
            t[n] = runs == 1 && (nMin is 2 or 3) && g3;
        }
        return t;
    }
}
