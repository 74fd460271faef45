namespace Ccr.Kernels.Ops;

internal static partial class BatchNorm
{
    /// <summary>
    /// float64 host references of batch norm 2d with PyTorch's semantics, optionally followed by a
    /// residual add and a ReLU: y = act(bn(x) + residual), act = ReLU or identity.   x (N, C, H, W)
    /// Training normalises with the batch mean and biased variance and moves the running statistics
    /// by momentum with the unbiased variance; eval normalises with the running statistics.
    /// </summary>
    public static class Reference
    {
        public sealed record ForwardResult(double[] Y, double[] Mean, double[] InvStd, double[] RunningMean, double[] RunningVar);

        public sealed record Grads(double[] Dx, double[] Dweight, double[] Dbias, double[]? Dresidual);

        /// <summary>Training forward: y, the batch mean and invstd (C), and the running statistics
        /// after one update.</summary>
        public static ForwardResult ForwardTraining(double[] x, double[] weight, double[] bias, double[] runningMean, double[] runningVar,
                                              int n, int c, int hw, double momentum, double eps,
                                              double[]? residual = null, bool relu = false)
        {
            var (mean, invstd, rm, rv) = BatchStats(x, runningMean, runningVar, n, c, hw, momentum, eps);
            return new ForwardResult(Apply(x, mean, invstd, weight, bias, residual, relu, n, c, hw), mean, invstd, rm, rv);
        }

        /// <summary>Eval forward: act((x - running_mean) / sqrt(running_var + eps) * w + b + residual).</summary>
        public static double[] ForwardEval(double[] x, double[] weight, double[] bias, double[] runningMean, double[] runningVar,
                                           int n, int c, int hw, double eps, double[]? residual = null, bool relu = false)
        {
            var invstd = runningVar.Select(v => 1 / Math.Sqrt(v + eps)).ToArray();
            return Apply(x, runningMean, invstd, weight, bias, residual, relu, n, c, hw);
        }

        /// <summary>Training backward (statistics recomputed from x; they depend on x): dx, dweight,
        /// dbias and, with a residual, dresidual.</summary>
        public static Grads BackwardTraining(double[] dy, double[] x, double[] weight, double[] bias, int n, int c, int hw, double eps,
                                             double[]? residual = null, bool relu = false)
        {
            var (mean, invstd, _, _) = BatchStats(x, new double[c], new double[c], n, c, hw, 0, eps);
            return Backward(dy, x, weight, bias, mean, invstd, residual, relu, n, c, hw, training: true);
        }

        /// <summary>Eval backward: the statistics are constants, so dx = dz * w * invstd.</summary>
        public static Grads BackwardEval(double[] dy, double[] x, double[] weight, double[] bias, double[] runningMean,
                                         double[] runningVar, int n, int c, int hw, double eps,
                                         double[]? residual = null, bool relu = false)
        {
            var invstd = runningVar.Select(v => 1 / Math.Sqrt(v + eps)).ToArray();
            return Backward(dy, x, weight, bias, runningMean, invstd, residual, relu, n, c, hw, training: false);
        }

        /// <summary>Batch mean, invstd = 1/sqrt(biased var + eps), and the running statistics moved
        /// by momentum with the unbiased variance (two passes: no cancellation).</summary>
        public static (double[] Mean, double[] InvStd, double[] RunningMean, double[] RunningVar) BatchStats(
            double[] x, double[] runningMean, double[] runningVar, int n, int c, int hw, double momentum, double eps)
        {
            var mean = new double[c]; var invstd = new double[c];
            var rm = (double[])runningMean.Clone(); var rv = (double[])runningVar.Clone();
            int m = n * hw;
            for (int ch = 0; ch < c; ch++)
            {
                double s = 0;
                for (int b = 0; b < n; b++) for (int i = 0; i < hw; i++) s += x[(b * c + ch) * hw + i];
                double mu = s / m, ss = 0;
                for (int b = 0; b < n; b++) for (int i = 0; i < hw; i++) { double dv = x[(b * c + ch) * hw + i] - mu; ss += dv * dv; }
                mean[ch] = mu;
                invstd[ch] = 1 / Math.Sqrt(ss / m + eps);
                rm[ch] = (1 - momentum) * rm[ch] + momentum * mu;
                rv[ch] = (1 - momentum) * rv[ch] + momentum * ss / (m - 1);
            }
            return (mean, invstd, rm, rv);
        }

        static double[] Apply(double[] x, double[] mean, double[] invstd, double[] weight, double[] bias,
                              double[]? residual, bool relu, int n, int c, int hw)
        {
            var y = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        double v = (x[k] - mean[ch]) * invstd[ch] * weight[ch] + bias[ch] + (residual?[k] ?? 0);
                        y[k] = relu && v <= 0 ? 0 : v;
                    }
            return y;
        }

        static Grads Backward(double[] dy, double[] x, double[] weight, double[] bias, double[] mean, double[] invstd,
                              double[]? residual, bool relu, int n, int c, int hw, bool training)
        {
            // dz: the gradient at the output of the residual add (the ReLU's mask applied).
            var y = Apply(x, mean, invstd, weight, bias, residual, relu, n, c, hw);
            var dz = new double[dy.Length];
            for (int k = 0; k < dy.Length; k++) dz[k] = relu && y[k] <= 0 ? 0 : dy[k];
            var dx = new double[x.Length]; var dw = new double[c]; var db = new double[c];
            int m = n * hw;
            for (int ch = 0; ch < c; ch++)
            {
                for (int b = 0; b < n; b++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        db[ch] += dz[k];
                        dw[ch] += dz[k] * (x[k] - mean[ch]) * invstd[ch];
                    }
                for (int b = 0; b < n; b++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        double xhat = (x[k] - mean[ch]) * invstd[ch];
                        dx[k] = weight[ch] * invstd[ch] * (training ? dz[k] - db[ch] / m - xhat * dw[ch] / m : dz[k]);
                    }
            }
            return new Grads(dx, dw, db, residual == null ? null : dz);
        }
    }
}
