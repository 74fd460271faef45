namespace Ccr.Kernels.Ops;

internal static partial class SyncBatchNorm
{
    /// <summary>float64 host references of the synchronised batch norm pieces.   x, dy (N, C, H, W)</summary>
    public static class Reference
    {
        public static double[] SquaredDeviation(double[] x, double[] mean, int n, int c, int hw)
        {
            var r = new double[c];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++) { double v = x[(b * c + ch) * hw + i] - mean[ch]; r[ch] += v * v; }
            return r;
        }

        /// <summary>dx from dz and the global sums of dz and dz * xhat.</summary>
        public static double[] BackwardDx(double[] dz, double[] x, double[] mean, double[] invstd, double[] weight,
                                          double[] sdz, double[] sdzxhat, long count, int n, int c, int hw)
        {
            var dx = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        double inv = invstd[ch];
                        dx[k] = weight[ch] * inv * (dz[k] - sdz[ch] / count - (x[k] - mean[ch]) * inv * sdzxhat[ch] / count);
                    }
            return dx;
        }
    }
}
