namespace Ccr.Kernels;

public static partial class SyncBatchNorm
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

        public static (double[] Sdy, double[] Sdyxmu) BackwardSums(double[] dy, double[] x, double[] mean, int n, int c, int hw)
        {
            var a = new double[c]; var b2 = new double[c];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        a[ch] += dy[k];
                        b2[ch] += dy[k] * (x[k] - mean[ch]);
                    }
            return (a, b2);
        }

        public static double[] BackwardDx(double[] dy, double[] x, double[] mean, double[] invstd, double[] weight,
                                          double[] sdy, double[] sdyxmu, long count, int n, int c, int hw)
        {
            var dx = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        double inv = invstd[ch];
                        dx[k] = weight[ch] * inv * (dy[k] - sdy[ch] / count - (x[k] - mean[ch]) * inv * inv * sdyxmu[ch] / count);
                    }
            return dx;
        }
    }
}
