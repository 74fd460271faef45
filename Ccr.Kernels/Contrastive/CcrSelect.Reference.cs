namespace Ccr.Kernels.Contrastive;

internal static partial class CcrSelect
{
    /// <summary>
    /// float64 brute-force references of the mining: whole-row sorts instead of radix selects and
    /// heaps. They take the distance matrices as input (the kernels' own float32 ones, widened), so
    /// that a comparison tests selection and not rounding of near-equal distances.
    /// </summary>
    public static class Reference
    {
        static int Cmp(double a, int ia, double b, int ib) => a != b ? a.CompareTo(b) : ia.CompareTo(ib);

        /// <summary>Positive and negative sets (rows, HW) as the definition states them.</summary>
        public static (bool[] Pos, bool[] Neg) Sets(double[] ldist, int[] anchors, int rows, int hw, int k, CcrLabelMetric metric)
        {
            var pos = new bool[rows * hw];
            var neg = new bool[rows * hw];
            for (int r = 0; r < rows; r++)
            {
                int anc = anchors[r];
                var elig = Enumerable.Range(0, hw).Where(i => !double.IsNaN(ldist[r * hw + i]) && i != anc).ToList();
                if (metric == CcrLabelMetric.Discrete)
                {
                    foreach (int i in elig)
                        if (ldist[r * hw + i] == 0) pos[r * hw + i] = true; else neg[r * hw + i] = true;
                    continue;
                }
                elig.Sort((x, y) => Cmp(ldist[r * hw + x], x, ldist[r * hw + y], y));
                foreach (int i in elig.Take(k)) pos[r * hw + i] = true;
                var rest = elig.Skip(k).ToList();
                rest.Sort((x, y) => Cmp(-ldist[r * hw + x], x, -ldist[r * hw + y], y));
                foreach (int i in rest.Take(k)) neg[r * hw + i] = true;
            }
            return (pos, neg);
        }

        /// <summary>posIdx (rows) and negIdx (rows, numNeg) in pixel order, -1 padded.</summary>
        public static (int[] PosIdx, int[] NegIdx) Mine(double[] fdist, double[] ldist, int[] anchors, int rows, int hw, int k,
                                                        int numNeg, CcrLabelMetric metric, CcrSampling mode, uint seed)
        {
            var (pos, neg) = Sets(ldist, anchors, rows, hw, k, metric);
            var posIdx = new int[rows];
            var negIdx = Enumerable.Repeat(-1, rows * numNeg).ToArray();
            for (int r = 0; r < rows; r++)
            {
                var ps = Enumerable.Range(0, hw).Where(i => pos[r * hw + i]).ToList();
                // hard: largest feature distance first, ties to the lower index; basic: smallest hash
                if (mode == CcrSampling.Hard) ps.Sort((x, y) => Cmp(-fdist[r * hw + x], x, -fdist[r * hw + y], y));
                else ps.Sort((x, y) => Cmp(Hash(seed, r, x), x, Hash(seed, r, y), y));
                posIdx[r] = ps.Count > 0 ? ps[0] : -1;
                if (posIdx[r] < 0) continue;
                double dp = fdist[r * hw + posIdx[r]];
                var ns = Enumerable.Range(0, hw).Where(i => neg[r * hw + i] && (mode == CcrSampling.Basic || fdist[r * hw + i] > dp)).ToList();
                if (mode == CcrSampling.Hard) ns.Sort((x, y) => Cmp(fdist[r * hw + x], x, fdist[r * hw + y], y));
                else ns.Sort((x, y) => Cmp(Hash(seed, r, x), x, Hash(seed, r, y), y));
                var chosen = ns.Take(numNeg).OrderBy(i => i).ToArray();
                for (int j = 0; j < chosen.Length; j++) negIdx[r * numNeg + j] = chosen[j];
            }
            return (posIdx, negIdx);
        }
    }
}
