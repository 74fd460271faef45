namespace Ccr.Kernels.Contrastive;

internal static partial class CcrTriplet
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

        /// <summary>
        /// Not a float64 reference but the CUDA variant's summation contract replayed in float32 on
        /// the host: each pixel's gradient is the sum, in increasing entry order (row-major over
        /// (row, slot), slot 0 the anchor, 1 the positive, 2 + j negative j), of the contributions
        /// of its live entries, each computed with the kernel's own float operations. A kernel that
        /// matches this bit for bit sums in that fixed order, whatever order its threads run in.
        /// </summary>
        public static float[] BackwardEntryOrder(float dloss, float triplets, float[] proj, int[] anchors, int[] posIdx, int[] negIdx,
                                                 float[] loss, float[] dap, float[] dan, int n, int dim, int hw, int numAnchors, int numNeg)
        {
            var g = new float[proj.Length];
            var done = new bool[proj.Length];
            float s = dloss / MathF.Max(triplets, 1f);
            int per = numNeg + 2;
            for (int image = 0; image < n; image++)
                for (int e = 0; e < numAnchors * per; e++)
                {
                    int r = image * numAnchors + e / per, slot = e % per;
                    if (anchors[r] < 0 || posIdx[r] < 0) continue;
                    bool rowLive = Enumerable.Range(0, numNeg).Any(j => loss[r * numNeg + j] > 0f);
                    int x = slot >= 2 ? (loss[r * numNeg + slot - 2] > 0f ? negIdx[r * numNeg + slot - 2] : -1)
                          : rowLive ? (slot == 0 ? anchors[r] : posIdx[r]) : -1;
                    if (x < 0) continue;
                    for (int c = 0; c < dim; c++)
                    {
                        int b = image * dim * hw + c * hw;
                        float va = proj[b + anchors[r]], contribution;
                        if (slot >= 2)
                        {
                            int tj = r * numNeg + slot - 2;
                            contribution = dan[tj] > 0f ? s * (va - proj[b + negIdx[tj]]) / dan[tj] : 0f;
                        }
                        else
                        {
                            float gp = dap[r] > 0f ? s * (va - proj[b + posIdx[r]]) / dap[r] : 0f;
                            contribution = 0f;
                            for (int j = 0; j < numNeg; j++)
                            {
                                int tj = r * numNeg + j;
                                if (!(loss[tj] > 0f)) continue;
                                if (slot == 1) { contribution -= gp; continue; }
                                float gn = dan[tj] > 0f ? s * (va - proj[b + negIdx[tj]]) / dan[tj] : 0f;
                                contribution += gp - gn;
                            }
                        }
                        // the first entry of a pixel starts its sum from 0, as the kernel's chain walk does
                        g[b + x] = done[b + x] ? g[b + x] + contribution : 0f + contribution;
                        done[b + x] = true;
                    }
                }
            return g;
        }
    }
}
