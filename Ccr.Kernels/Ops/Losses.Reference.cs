namespace Ccr.Kernels.Ops;

internal static partial class Losses
{
    /// <summary>float64 host references of the losses: each returns the loss and the gradient of the
    /// loss with respect to the first input (scaled by <c>dloss</c>).</summary>
    public static class Reference
    {
        /// <summary>logits (N, C, HW), labels (N, HW); labels equal to ignoreIndex or outside [0, C) are ignored.</summary>
        public static (double Loss, double[] DLogits) CrossEntropy(double[] logits, int[] labels, double[]? weights,
                                                                   int N, int C, int HW, double dloss = 1,
                                                                   int ignoreIndex = 255)
        {
            double num = 0, den = 0;
            var dx = new double[logits.Length];
            var lse = new double[(long)N * HW];
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++)
                {
                    int y = labels[n * HW + p];
                    if (y < 0 || y >= C || y == ignoreIndex) continue;
                    long b = (long)n * C * HW + p;
                    double m = double.NegativeInfinity;
                    for (int c = 0; c < C; c++) m = Math.Max(m, logits[b + c * HW]);
                    double s = 0;
                    for (int c = 0; c < C; c++) s += Math.Exp(logits[b + c * HW] - m);
                    lse[n * HW + p] = m + Math.Log(s);
                    double w = weights?[y] ?? 1;
                    num += w * (lse[n * HW + p] - logits[b + y * HW]);
                    den += w;
                }
            if (den <= 0) return (0, dx);
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++)
                {
                    int y = labels[n * HW + p];
                    if (y < 0 || y >= C || y == ignoreIndex) continue;
                    long b = (long)n * C * HW + p;
                    double g = dloss * (weights?[y] ?? 1) / den;
                    for (int c = 0; c < C; c++)
                        dx[b + c * HW] = g * (Math.Exp(logits[b + c * HW] - lse[n * HW + p]) - (c == y ? 1 : 0));
                }
            return (num / den, dx);
        }

        /// <summary>pred, target (N, C, HW): a pixel counts when no target channel equals
        /// <paramref name="ignore"/> and not all of them are 0.</summary>
        public static (double Loss, double[] DPred) MaskedL1(double[] pred, double[] target, double ignore,
                                                             int N, int C, int HW, double dloss = 1)
        {
            var valid = new bool[(long)N * HW];
            double num = 0, den = 0;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++)
                {
                    long b = (long)n * C * HW + p;
                    bool ok = false, ign = false;
                    for (int c = 0; c < C; c++) { ign |= target[b + c * HW] == ignore; ok |= target[b + c * HW] != 0; }
                    if (ign || !ok) continue;
                    valid[n * HW + p] = true;
                    for (int c = 0; c < C; c++) num += Math.Abs(pred[b + c * HW] - target[b + c * HW]);
                    den++;
                }
            var dp = new double[pred.Length];
            if (den == 0) return (0, dp);
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++)
                {
                    if (!valid[n * HW + p]) continue;
                    long b = (long)n * C * HW + p;
                    for (int c = 0; c < C; c++) dp[b + c * HW] = dloss * Math.Sign(pred[b + c * HW] - target[b + c * HW]) / den;
                }
            return (num / den, dp);
        }

        /// <summary>
        /// The edge loss of ATRC / InvPT (<c>BalancedBinaryCrossEntropyLoss(pos_weight=w)</c>):
        /// <code>
        /// mask = label != 255; x, y = output[mask], label[mask]
        /// loss = BCEWithLogits(x, y, pos_weight = w / (1 - w), reduction='mean') * (1 - w)
        ///      = mean_valid( w * y * softplus(-x) + (1 - w) * (1 - y) * softplus(x) )
        /// </code>
        /// Normalised by the number of non-ignored pixels. (MTI-Net's BalancedCrossEntropyLoss with a
        /// fixed pos_weight gives the same sum but divides by every pixel and does not mask 255.)
        /// </summary>
        public static (double Loss, double[] DLogits) BalancedBce(double[] logits, double[] target, double w, double ignore,
                                                                  double dloss = 1)
        {
            double num = 0, den = 0;
            for (int i = 0; i < logits.Length; i++)
            {
                double y = target[i];
                if (y == ignore) continue;
                num += w * y * Softplus(-logits[i]) + (1 - w) * (1 - y) * Softplus(logits[i]);
                den++;
            }
            var dx = new double[logits.Length];
            if (den == 0) return (0, dx);
            for (int i = 0; i < logits.Length; i++)
            {
                double y = target[i];
                if (y == ignore) continue;
                double s = 1 / (1 + Math.Exp(-logits[i]));
                dx[i] = dloss / den * (-w * y * (1 - s) + (1 - w) * (1 - y) * s);
            }
            return (num / den, dx);
        }

        static double Softplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
    }
}
