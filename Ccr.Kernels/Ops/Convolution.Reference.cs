namespace Ccr.Kernels.Ops;

internal static partial class Convolution
{
    /// <summary>float64 host references of conv2d forward and backward: direct loops over the
    /// definition, no im2col, so they share no indexing with the kernels.</summary>
    public static class Reference
    {
        /// <summary>y (N, Cout, OH, OW) from x (N, Cin, H, W), w (Cout, Cin, K, K), bias (Cout) or null.</summary>
        public static double[] Forward(double[] x, double[] w, double[]? bias, ConvGeom g)
        {
            var y = new double[(long)g.N * g.Cout * g.OHW];
            for (int n = 0; n < g.N; n++)
                for (int co = 0; co < g.Cout; co++)
                    for (int oh = 0; oh < g.OH; oh++)
                        for (int ow = 0; ow < g.OW; ow++)
                        {
                            double s = bias?[co] ?? 0;
                            for (int ci = 0; ci < g.Cin; ci++)
                                for (int kh = 0; kh < g.K; kh++)
                                    for (int kw = 0; kw < g.K; kw++)
                                    {
                                        int h = oh * g.S - g.P + kh * g.D, ww = ow * g.S - g.P + kw * g.D;
                                        if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                                        s += x[((n * g.Cin + ci) * g.H + h) * g.W + ww] * w[((co * g.Cin + ci) * g.K + kh) * g.K + kw];
                                    }
                            y[((n * g.Cout + co) * g.OH + oh) * g.OW + ow] = s;
                        }
            return y;
        }

        /// <summary>(dx, dw, db) of sum(dy * Forward(x, w, b)).</summary>
        public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] dy, double[] x, double[] w, ConvGeom g)
        {
            var dx = new double[x.Length];
            var dw = new double[w.Length];
            var db = new double[g.Cout];
            for (int n = 0; n < g.N; n++)
                for (int co = 0; co < g.Cout; co++)
                    for (int oh = 0; oh < g.OH; oh++)
                        for (int ow = 0; ow < g.OW; ow++)
                        {
                            double gy = dy[((n * g.Cout + co) * g.OH + oh) * g.OW + ow];
                            db[co] += gy;
                            for (int ci = 0; ci < g.Cin; ci++)
                                for (int kh = 0; kh < g.K; kh++)
                                    for (int kw = 0; kw < g.K; kw++)
                                    {
                                        int h = oh * g.S - g.P + kh * g.D, ww = ow * g.S - g.P + kw * g.D;
                                        if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                                        int xi = ((n * g.Cin + ci) * g.H + h) * g.W + ww, wi = ((co * g.Cin + ci) * g.K + kh) * g.K + kw;
                                        dx[xi] += gy * w[wi];
                                        dw[wi] += gy * x[xi];
                                    }
                        }
            return (dx, dw, db);
        }
    }
}
