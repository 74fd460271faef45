namespace Ccr.Kernels.Ops;

internal static partial class ShapeOps
{
    /// <summary>float64 host references of the shape ops.   x (N, C, HW)</summary>
    public static class Reference
    {
        /// <summary>torch.cat(xs, dim=1) of (N, C_i, HW) tensors.</summary>
        public static double[] Concat(double[][] xs, int[] channels, int n, int hw)
        {
            int total = channels.Sum();
            var y = new double[(long)n * total * hw];
            for (int b = 0; b < n; b++)
            {
                int off = 0;
                for (int t = 0; t < xs.Length; t++)
                {
                    Array.Copy(xs[t], (long)b * channels[t] * hw, y, ((long)b * total + off) * hw, (long)channels[t] * hw);
                    off += channels[t];
                }
            }
            return y;
        }

        /// <summary>x[:, start:start+length].</summary>
        public static double[] Slice(double[] x, int c, int start, int length, int n, int hw)
        {
            var y = new double[(long)n * length * hw];
            for (int b = 0; b < n; b++)
                Array.Copy(x, ((long)b * c + start) * hw, y, (long)b * length * hw, (long)length * hw);
            return y;
        }

        /// <summary>x / max(||x||_2 over channels, eps), per pixel.</summary>
        public static double[] L2Normalize(double[] x, int n, int c, int hw, double eps)
        {
            var y = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++)
                {
                    double ss = 0;
                    for (int ch = 0; ch < c; ch++) { double v = x[(b * c + ch) * hw + i]; ss += v * v; }
                    double den = Math.Max(Math.Sqrt(ss), eps);
                    for (int ch = 0; ch < c; ch++) y[(b * c + ch) * hw + i] = x[(b * c + ch) * hw + i] / den;
                }
            return y;
        }

        /// <summary>Vector-Jacobian product of <see cref="L2Normalize"/>, derived independently of
        /// the kernel's form: d(x_k / r)/dx_j = delta_jk / r - x_k x_j / r^3 (r = ||x|| > eps).</summary>
        public static double[] L2NormalizeBackward(double[] dy, double[] x, int n, int c, int hw, double eps)
        {
            var dx = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++)
                {
                    double ss = 0, dot = 0;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int k = (b * c + ch) * hw + i;
                        ss += x[k] * x[k]; dot += dy[k] * x[k];
                    }
                    double r = Math.Sqrt(ss);
                    for (int ch = 0; ch < c; ch++)
                    {
                        int k = (b * c + ch) * hw + i;
                        dx[k] = r > eps ? dy[k] / r - x[k] * dot / (r * r * r) : dy[k] / eps;
                    }
                }
            return dx;
        }
    }
}
