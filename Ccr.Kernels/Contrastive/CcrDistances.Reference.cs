namespace Ccr.Kernels.Contrastive;

internal static partial class CcrDistances
{
    /// <summary>float64 brute-force references of the CCR distance matrices (same layouts).</summary>
    public static class Reference
    {
        public static double[] FeatureDistances(double[] proj, int[] anchors, int n, int dim, int hw, int numAnchors)
        {
            var f = new double[(long)n * numAnchors * hw];
            for (int row = 0; row < n * numAnchors; row++)
            {
                int b = row / numAnchors, anc = anchors[row];
                for (int i = 0; i < hw; i++)
                {
                    if (anc < 0) { f[row * hw + i] = double.NaN; continue; }
                    double s = 0;
                    for (int c = 0; c < dim; c++)
                    {
                        double diff = proj[(b * dim + c) * hw + anc] - proj[(b * dim + c) * hw + i];
                        s += diff * diff;
                    }
                    f[row * hw + i] = Math.Sqrt(s);
                }
            }
            return f;
        }

        public static double[] LabelDistances(double[] labels, int[] valid, int[] anchors, int n, int channels, int hw,
                                              int numAnchors, CcrLabelMetric metric)
        {
            var l = new double[(long)n * numAnchors * hw];
            for (int row = 0; row < n * numAnchors; row++)
            {
                int b = row / numAnchors, anc = anchors[row];
                for (int i = 0; i < hw; i++)
                {
                    double v;
                    if (anc < 0 || valid[b * hw + anc] == 0 || valid[b * hw + i] == 0) v = double.NaN;
                    else if (metric == CcrLabelMetric.Discrete) v = labels[b * hw + anc] == labels[b * hw + i] ? 0 : 1;
                    else if (metric == CcrLabelMetric.L1) v = Math.Abs(labels[b * hw + anc] - labels[b * hw + i]);
                    else
                    {
                        // angle through the normalised cosine: a different formula from the kernel's atan2
                        double dot = 0, nu = 0, nv = 0;
                        for (int c = 0; c < 3; c++)
                        {
                            double u = labels[(b * 3 + c) * hw + anc], w = labels[(b * 3 + c) * hw + i];
                            dot += u * w; nu += u * u; nv += w * w;
                        }
                        v = Math.Acos(Math.Clamp(dot / Math.Sqrt(nu * nv), -1, 1));
                    }
                    l[row * hw + i] = v;
                }
            }
            return l;
        }
    }
}
