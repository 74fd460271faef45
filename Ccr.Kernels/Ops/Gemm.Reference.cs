namespace Ccr.Kernels.Ops;

internal static partial class Gemm
{
    /// <summary>float64 host reference of the GEMM (row-major, same conventions as <see cref="Run"/>).</summary>
    public static class Reference
    {
        /// <summary>C (M, N) = alpha * op(A) op(B) + beta * C; returns a new array (c may be null when beta = 0).</summary>
        public static double[] Run(double[]? c, double[] a, double[] b, int m, int n, int k,
                                   bool transA = false, bool transB = false, double alpha = 1, double beta = 0)
        {
            var r = new double[(long)m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (transA ? a[(long)p * m + i] : a[(long)i * k + p]) * (transB ? b[(long)j * k + p] : b[(long)p * n + j]);
                    r[(long)i * n + j] = alpha * s + (beta == 0 ? 0 : beta * c![(long)i * n + j]);
                }
            return r;
        }
    }
}
