using System.Numerics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Fused optimiser steps over flat parameter / gradient / state arrays (llm.c's layout): one launch
/// updates every parameter of the model. Step-dependent scalars (learning rate, bias corrections)
/// are computed on the host in float64 per step and passed as launch arguments, as PyTorch's
/// single-tensor Adam computes them in Python. Parameters and state are updated in place.
/// CUDA variant: grid-stride kernels. CPU variant: SIMD host code (Vector&lt;float&gt;) in parallel chunks.
/// float64 references: Optimizers.Reference.cs.
/// Each step takes an optional device flag (<see cref="FiniteCheck"/>'s state, entry 0): while it is
/// non-zero the update is skipped, leaving parameters and state untouched, so a step whose loss or
/// gradients were not finite changes nothing and the host need not look before launching.
/// </summary>
public static partial class Optimizers
{
    // ---------------------------------------------------------------- kernels

    // torch.optim.Adam / AdamW (1.13, single tensor), per element:
    //   g = grad + l2 * p;  p *= decay  (decay = 1 - lr * wd for AdamW, else 1)
    //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    //   p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps),  stepSize = lr / (1 - b1^t), bc2Sqrt = sqrt(1 - b2^t)
    static void AdamKernel(ArrayView<float> p, ArrayView<float> m, ArrayView<float> v, ArrayView<float> grad, ArrayView<int> skip,
                           float b1, float b2, float eps, float l2, float decay, float stepSize, float bc2Sqrt)
    {
        if (skip[0] != 0) return;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < p.IntLength; i += Launch.Stride)
        {
            float pi = p[i];
            float g = grad[i] + l2 * pi;
            pi *= decay;
            float mi = b1 * m[i] + (1f - b1) * g;
            float vi = b2 * v[i] + (1f - b2) * g * g;
            m[i] = mi; v[i] = vi;
            p[i] = pi - stepSize * mi / (XMath.Sqrt(vi) / bc2Sqrt + eps);
        }
    }

    // torch.optim.SGD: g = grad + wd * p; buf = first ? g : mu * buf + (1 - dampening) * g;
    // g = nesterov ? g + mu * buf : buf; p -= lr * g. Without momentum (mu = 0) buf is not touched.
    static void SgdKernel(ArrayView<float> p, ArrayView<float> buf, ArrayView<float> grad, ArrayView<int> skip,
                          float lr, float mu, float dampening, float wd, int nesterov, int first)
    {
        if (skip[0] != 0) return;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < p.IntLength; i += Launch.Stride)
        {
            float pi = p[i];
            float g = grad[i] + wd * pi;
            if (mu != 0f)
            {
                float b = first != 0 ? g : mu * buf[i] + (1f - dampening) * g;
                buf[i] = b;
                g = nesterov != 0 ? g + mu * b : b;
            }
            p[i] = pi - lr * g;
        }
    }

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                               float, float, float, float, float, float, float> Adam;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                               float, float, float, float, int, int> Sgd;
        /// <summary>A flag that is always 0, for steps launched without one.</summary>
        public readonly MemoryBuffer1D<int, Stride1D.Dense> Never;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            Adam = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                                      float, float, float, float, float, float, float>(AdamKernel);
            Sgd = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                                     float, float, float, float, int, int>(SgdKernel);
            Never = a.Allocate1D<int>(1);
            Never.MemSetToZero();
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    /// <summary>The skip flag's view: the given flag (its first entry), or the always-zero one.</summary>
    static ArrayView<int> SkipView(Device d, Buf<int> skipIf) => skipIf.IsValid ? skipIf.View.SubView(0, 1) : K(d).Never.View;

    /// <summary>True when the host variant must leave everything as it is (reads the flag from host memory).</summary>
    static unsafe bool HostSkips(Buf<int> skipIf) => skipIf.IsValid && *skipIf.Ptr != 0;

    // ---------------------------------------------------------------- launchers

    /// <summary>
    /// One Adam (or AdamW when <paramref name="decoupled"/>) step at <paramref name="step"/> (counted
    /// from 1), PyTorch semantics: L2 weight decay is added to the gradient for Adam; AdamW multiplies
    /// the parameter by 1 - lr * wd before the update; eps is added to sqrt(v_hat). Nothing changes
    /// while <paramref name="skipIf"/>[0] is non-zero (default: no flag).
    /// </summary>
    public static unsafe void Adam(Device d, Buf<float> p, Buf<float> m, Buf<float> v, Buf<float> grad,
                                   long step, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled,
                                   Buf<int> skipIf = default)
    {
        const string op = "Adam";
        Launch.SameLength(op, p.Length, grad.Length, "parameters and gradients");
        Launch.SameLength(op, p.Length, m.Length, "parameters and exp_avg");
        Launch.SameLength(op, p.Length, v.Length, "parameters and exp_avg_sq");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"{op}: step {step} (steps count from 1)");
        if (p.Length == 0) return;
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        float l2 = decoupled ? 0f : weightDecay;
        float decay = decoupled ? (float)(1 - (double)lr * weightDecay) : 1f;
        if (skipIf.IsValid && skipIf.Length < 1) throw new ArgumentException($"{op}: empty skip flag");
        if (Host(d))
        {
            d.Synchronize();
            if (HostSkips(skipIf)) return;
            float* pp = p.Ptr, pm = m.Ptr, pv = v.Ptr, pg = grad.Ptr;
            HostChunks(p.Length, (lo, hi) => AdamHost(pp, pm, pv, pg, lo, hi, beta1, beta2, eps, l2, decay, stepSize, bc2Sqrt));
            return;
        }
        checked { _ = (int)p.Length; }
        K(d).Adam(d.Grid(p.Length), p.View, m.View, v.View, grad.View, SkipView(d, skipIf), beta1, beta2, eps, l2, decay, stepSize, bc2Sqrt);
    }

    static unsafe void AdamHost(float* p, float* m, float* v, float* grad, long lo, long hi,
                                float b1, float b2, float eps, float l2, float decay, float stepSize, float bc2Sqrt)
    {
        long i = lo;
        int w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var vb1 = new Vector<float>(b1); var vc1 = new Vector<float>(1f - b1);
            var vb2 = new Vector<float>(b2); var vc2 = new Vector<float>(1f - b2);
            var vl2 = new Vector<float>(l2); var vdecay = new Vector<float>(decay);
            var vstep = new Vector<float>(stepSize); var vbc2 = new Vector<float>(bc2Sqrt); var veps = new Vector<float>(eps);
            for (; i + w <= hi; i += w)
            {
                var pi = Vector.Load(p + i);
                var g = Vector.Load(grad + i) + vl2 * pi;
                pi *= vdecay;
                var mi = vb1 * Vector.Load(m + i) + vc1 * g;
                var vi = vb2 * Vector.Load(v + i) + vc2 * g * g;
                mi.Store(m + i); vi.Store(v + i);
                (pi - vstep * mi / (Vector.SquareRoot(vi) / vbc2 + veps)).Store(p + i);
            }
        }
        for (; i < hi; i++)
        {
            float pi = p[i];
            float g = grad[i] + l2 * pi;
            pi *= decay;
            float mi = b1 * m[i] + (1f - b1) * g;
            float vi = b2 * v[i] + (1f - b2) * g * g;
            m[i] = mi; v[i] = vi;
            p[i] = pi - stepSize * mi / (MathF.Sqrt(vi) / bc2Sqrt + eps);
        }
    }

    /// <summary>
    /// One SGD step, PyTorch semantics: weight decay as L2 (g += wd * p); with momentum mu the buffer
    /// is g on the first step (<paramref name="firstStep"/>) and mu * buf + (1 - dampening) * g after;
    /// Nesterov uses g + mu * buf. <paramref name="buf"/> may be empty when mu = 0. Nothing changes
    /// while <paramref name="skipIf"/>[0] is non-zero (default: no flag).
    /// </summary>
    public static unsafe void Sgd(Device d, Buf<float> p, Buf<float> buf, Buf<float> grad, float lr, float momentum,
                                  float dampening, float weightDecay, bool nesterov, bool firstStep, Buf<int> skipIf = default)
    {
        const string op = "SGD";
        Launch.SameLength(op, p.Length, grad.Length, "parameters and gradients");
        if (momentum != 0f) Launch.SameLength(op, p.Length, buf.Length, "parameters and momentum_buffer");
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException($"{op}: Nesterov momentum requires a momentum and zero dampening");
        if (skipIf.IsValid && skipIf.Length < 1) throw new ArgumentException($"{op}: empty skip flag");
        if (p.Length == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            if (HostSkips(skipIf)) return;
            float* pp = p.Ptr, pb = momentum != 0f ? buf.Ptr : null, pg = grad.Ptr;
            HostChunks(p.Length, (lo, hi) =>
            {
                for (long i = lo; i < hi; i++)
                {
                    float pi = pp[i];
                    float g = pg[i] + weightDecay * pi;
                    if (momentum != 0f)
                    {
                        float b = firstStep ? g : momentum * pb[i] + (1f - dampening) * g;
                        pb[i] = b;
                        g = nesterov ? g + momentum * b : b;
                    }
                    pp[i] = pi - lr * g;
                }
            });
            return;
        }
        checked { _ = (int)p.Length; }
        var bufView = momentum != 0f ? buf.View : grad.View; // never touched when mu = 0
        K(d).Sgd(d.Grid(p.Length), p.View, bufView, grad.View, SkipView(d, skipIf), lr, momentum, dampening, weightDecay, nesterov ? 1 : 0, firstStep ? 1 : 0);
    }

    /// <summary>Parallel.For over chunks of 64K elements (large enough to amortise scheduling).</summary>
    static void HostChunks(long count, Action<long, long> chunk)
    {
        const long Chunk = 1 << 16;
        long chunks = (count + Chunk - 1) / Chunk;
        if (chunks == 1) { chunk(0, count); return; }
        Parallel.For(0, chunks, k => chunk(k * Chunk, Math.Min(count, (k + 1) * Chunk)));
    }
}
