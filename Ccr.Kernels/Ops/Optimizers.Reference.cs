namespace Ccr.Kernels.Ops;

internal static partial class Optimizers
{
    /// <summary>float64 references of the optimiser steps, written as PyTorch 1.13's single-tensor
    /// <c>_single_tensor_adam</c> / <c>_single_tensor_sgd</c>; they update the arrays in place.</summary>
    public static class Reference
    {
        public static void Adam(double[] p, double[] m, double[] v, double[] grad, long step, double lr,
                                double beta1, double beta2, double eps, double weightDecay, bool decoupled)
        {
            double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
            for (int i = 0; i < p.Length; i++)
            {
                double g = grad[i];
                if (decoupled) p[i] *= 1 - lr * weightDecay;
                else g += weightDecay * p[i];
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                double denom = Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps;
                p[i] -= lr / bc1 * m[i] / denom;
            }
        }

        public static void Sgd(double[] p, double[] buf, double[] grad, double lr, double momentum, double dampening,
                               double weightDecay, bool nesterov, bool firstStep)
        {
            for (int i = 0; i < p.Length; i++)
            {
                double g = grad[i] + weightDecay * p[i];
                if (momentum != 0)
                {
                    buf[i] = firstStep ? g : momentum * buf[i] + (1 - dampening) * g;
                    g = nesterov ? g + momentum * buf[i] : buf[i];
                }
                p[i] -= lr * g;
            }
        }
    }
}
