namespace Ccr.Kernels;

public static partial class CcrTriplet
{
    /// <summary>float64 references: the mean triplet loss over existing triplets and its gradient.</summary>
    public static class Reference
    {
        static double Dist(double[] proj, int b, int hw, int dim, int x, int y)
        {
            double s = 0;
            for (int c = 0; c < dim; c++) { double v = proj[b + c * hw + x] - proj[b + c * hw + y]; s += v * v; }
            return Math.Sqrt(s);
        }

        /// <summary>Mean loss and the number of triplets.</summary>
        public static (double Loss, int Triplets) Forward(double[] proj, int[] anchors, int[] posIdx, int[] negIdx,
                                                          int dim, int hw, int numAnchors, int numNeg, double margin)
        {
            double sum = 0; int cnt = 0;
            for (int r = 0; r < anchors.Length; r++)
            {
                if (anchors[r] < 0 || posIdx[r] < 0) continue;
                int b = r / numAnchors * dim * hw;
                double dp = Dist(proj, b, hw, dim, anchors[r], posIdx[r]);
                for (int j = 0; j < numNeg; j++)
                {
                    int q = negIdx[r * numNeg + j];
                    if (q < 0) continue;
                    sum += Math.Max(dp - Dist(proj, b, hw, dim, anchors[r], q) + margin, 0);
                    cnt++;
                }
            }
            return (cnt > 0 ? sum / cnt : 0, cnt);
        }

        /// <summary>dproj = dloss * d(mean loss)/d(proj), with zero gradient at zero distance.</summary>
        public static double[] Backward(double dloss, double[] proj, int[] anchors, int[] posIdx, int[] negIdx,
                                        int dim, int hw, int numAnchors, int numNeg, double margin)
        {
            var g = new double[proj.Length];
            int cnt = Forward(proj, anchors, posIdx, negIdx, dim, hw, numAnchors, numNeg, margin).Triplets;
            double s = dloss / Math.Max(cnt, 1);
            for (int r = 0; r < anchors.Length; r++)
            {
                int a = anchors[r], p = posIdx[r];
                if (a < 0 || p < 0) continue;
                int b = r / numAnchors * dim * hw;
                double dp = Dist(proj, b, hw, dim, a, p);
                for (int j = 0; j < numNeg; j++)
                {
                    int q = negIdx[r * numNeg + j];
                    if (q < 0) continue;
                    double dn = Dist(proj, b, hw, dim, a, q);
                    if (!(dp - dn + margin > 0)) continue;
                    for (int c = 0; c < dim; c++)
                    {
                        int o = b + c * hw;
                        double gp = dp > 0 ? s * (proj[o + a] - proj[o + p]) / dp : 0;
                        double gn = dn > 0 ? s * (proj[o + a] - proj[o + q]) / dn : 0;
                        g[o + a] += gp - gn;
                        g[o + p] -= gp;
                        g[o + q] += gn;
                    }
                }
            }
            return g;
        }
    }
}
