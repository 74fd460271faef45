namespace Ccr.Kernels;

public static partial class BatchNorm
{
    /// <summary>float64 host references of batch norm 2d (PyTorch semantics).   x (N, C, H, W)</summary>
    public static class Reference
    {
        /// <summary>Training forward: returns y, the batch mean and invstd (C), and the running
        /// statistics after one update (unbiased variance).</summary>
        public static (double[] Y, double[] Mean, double[] InvStd, double[] RunningMean, double[] RunningVar) ForwardTraining(
            double[] x, double[] weight, double[] bias, double[] runningMean, double[] runningVar,
            int n, int c, int hw, double momentum, double eps)
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
            return (Affine(x, mean, invstd, weight, bias, n, c, hw), mean, invstd, rm, rv);
        }

        /// <summary>Eval forward: (x - running_mean) / sqrt(running_var + eps) * w + b.</summary>
        public static double[] ForwardEval(double[] x, double[] weight, double[] bias, double[] runningMean, double[] runningVar,
                                           int n, int c, int hw, double eps)
        {
            var invstd = runningVar.Select(v => 1 / Math.Sqrt(v + eps)).ToArray();
            return Affine(x, runningMean, invstd, weight, bias, n, c, hw);
        }

        static double[] Affine(double[] x, double[] mean, double[] invstd, double[] weight, double[] bias, int n, int c, int hw)
        {
            var y = new double[x.Length];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        y[k] = (x[k] - mean[ch]) * invstd[ch] * weight[ch] + bias[ch];
                    }
            return y;
        }

        /// <summary>Training backward (batch statistics recomputed from x): dx, dweight, dbias.</summary>
        public static (double[] Dx, double[] Dweight, double[] Dbias) BackwardTraining(
            double[] dy, double[] x, double[] weight, int n, int c, int hw, double eps)
        {
            var (_, mean, invstd, _, _) = ForwardTraining(x, weight, new double[c], new double[c], new double[c], n, c, hw, 0, eps);
            return Backward(dy, x, weight, mean, invstd, n, c, hw, training: true);
        }

        /// <summary>Eval backward: statistics are constants, so dx = dy * w * invstd.</summary>
        public static (double[] Dx, double[] Dweight, double[] Dbias) BackwardEval(
            double[] dy, double[] x, double[] weight, double[] runningMean, double[] runningVar, int n, int c, int hw, double eps)
        {
            var invstd = runningVar.Select(v => 1 / Math.Sqrt(v + eps)).ToArray();
            return Backward(dy, x, weight, runningMean, invstd, n, c, hw, training: false);
        }

        static (double[], double[], double[]) Backward(double[] dy, double[] x, double[] weight, double[] mean, double[] invstd,
                                                       int n, int c, int hw, bool training)
        {
            var dx = new double[x.Length]; var dw = new double[c]; var db = new double[c];
            int m = n * hw;
            for (int ch = 0; ch < c; ch++)
            {
                for (int b = 0; b < n; b++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        db[ch] += dy[k];
                        dw[ch] += dy[k] * (x[k] - mean[ch]) * invstd[ch];
                    }
                for (int b = 0; b < n; b++)
                    for (int i = 0; i < hw; i++)
                    {
                        int k = (b * c + ch) * hw + i;
                        double xhat = (x[k] - mean[ch]) * invstd[ch];
                        dx[k] = weight[ch] * invstd[ch] * (training ? dy[k] - db[ch] / m - xhat * dw[ch] / m : dy[k]);
                    }
            }
            return (dx, dw, db);
        }
    }
}
