using System.Numerics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Fused optimiser steps over flat parameter / gradient / state arrays (llm.c's layout): one launch
/// updates every parameter of the model. Step-dependent scalars (learning rate, bias corrections,
/// weight decay) are computed on the host in float64 per step, as PyTorch's single-tensor Adam
/// computes them in Python (<see cref="AdamScalars"/>, <see cref="SgdScalars"/>), and read by the
/// kernels from a small device buffer (<c>hyper</c>), not passed as launch arguments: a step
/// captured as a CUDA graph replays with the next step's values. Parameters and state are updated
/// in place.
/// CUDA variant: grid-stride kernels. CPU variant: SIMD host code (Vector&lt;float&gt;) in parallel chunks.
/// float64 references: Optimizers.Reference.cs.
/// Each step takes an optional device flag (<see cref="FiniteCheck"/>'s state, entry 0): while it is
/// non-zero the update is skipped, leaving parameters and state untouched, so a step whose loss or
/// gradients were not finite changes nothing and the host need not look before launching.
/// </summary>
internal static partial class Optimizers
{
    // ---------------------------------------------------------------- kernels

    // torch.optim.Adam / AdamW (1.13, single tensor), per element:
    //   g = grad + l2 * p;  p *= decay  (decay = 1 - lr * wd for AdamW, else 1)
    //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    //   p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps),  stepSize = lr / (1 - b1^t), bc2Sqrt = sqrt(1 - b2^t)
    // hyper = [stepSize, bc2Sqrt, decay, l2] (AdamScalars)
    static void AdamKernel(ArrayView<float> p, ArrayView<float> m, ArrayView<float> v, ArrayView<float> grad, ArrayView<int> skip,
                           ArrayView<float> hyper, float b1, float b2, float eps)
    {
        if (skip[0] != 0) return;
        float stepSize = hyper[0], bc2Sqrt = hyper[1], decay = hyper[2], l2 = hyper[3];
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
    // hyper = [lr, first step (1 or 0), wd] (SgdScalars)
    static void SgdKernel(ArrayView<float> p, ArrayView<float> buf, ArrayView<float> grad, ArrayView<int> skip,
                          ArrayView<float> hyper, float mu, float dampening, int nesterov)
    {
        if (skip[0] != 0) return;
        float lr = hyper[0], wd = hyper[2];
        bool first = hyper[1] != 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < p.IntLength; i += Launch.Stride)
        {
            float pi = p[i];
            float g = grad[i] + wd * pi;
            if (mu != 0f)
            {
                float b = first ? g : mu * buf[i] + (1f - dampening) * g;
                buf[i] = b;
                g = nesterov != 0 ? g + mu * b : b;
            }
            p[i] = pi - lr * g;
        }
    }

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                               ArrayView<float>, float, float, float> Adam;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                               ArrayView<float>, float, float, int> Sgd;
        /// <summary>A flag that is always 0, for steps launched without one.</summary>
        public readonly MemoryBuffer1D<int, Stride1D.Dense> Never;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            Adam = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                          ArrayView<float>, float, float, float>(AdamKernel);
            Sgd = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                         ArrayView<float>, float, float, int>(SgdKernel);
            Never = a.Allocate1D<int>(1);
            Never.MemSetToZero(d.Stream);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    /// <summary>The skip flag's view: the given flag (its first entry), or the always-zero one.</summary>
    static ArrayView<int> SkipView(Device d, Buf<int> skipIf) => skipIf.IsValid ? skipIf.View.SubView(0, 1) : K(d).Never.View;

    /// <summary>True when the host variant must leave everything as it is (reads the flag from host memory).</summary>
    static unsafe bool HostSkips(Buf<int> skipIf) => skipIf.IsValid && *skipIf.Ptr != 0;

    // ---------------------------------------------------------------- launchers

    /// <summary>Adam's scalars of step <paramref name="step"/> (counted from 1), in float64 then rounded,
    /// as the kernels read them: [lr / (1 - b1^t), sqrt(1 - b2^t), 1 - lr * wd (AdamW; else 1), wd
    /// (Adam's L2; 0 for AdamW)].</summary>
    public static float[] AdamScalars(long step, float lr, float beta1, float beta2, float weightDecay, bool decoupled)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"Adam: step {step} (steps count from 1)");
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        return [(float)(lr / bc1), (float)Math.Sqrt(bc2), decoupled ? (float)(1 - (double)lr * weightDecay) : 1f, decoupled ? 0f : weightDecay];
    }

    /// <summary>SGD's scalars as the kernels read them: [lr, 1 on the first step (else 0), wd].</summary>
    public static float[] SgdScalars(float lr, float weightDecay, bool firstStep) => [lr, firstStep ? 1f : 0f, weightDecay];

    /// <summary>
    /// One Adam (or AdamW when <paramref name="decoupled"/>) step at <paramref name="step"/> (counted
    /// from 1), PyTorch semantics: L2 weight decay is added to the gradient for Adam; AdamW multiplies
    /// the parameter by 1 - lr * wd before the update; eps is added to sqrt(v_hat). Nothing changes
    /// while <paramref name="skipIf"/>[0] is non-zero (default: no flag). Uploads the step's scalars
    /// (a host copy): the trainer uses the overload that reads them from its own device buffer.
    /// </summary>
    public static void Adam(Device d, Buf<float> p, Buf<float> m, Buf<float> v, Buf<float> grad,
                            long step, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled,
                            Buf<int> skipIf = default)
    {
        var hyper = AdamScalars(step, lr, beta1, beta2, weightDecay, decoupled);
        using var block = d.Pool.Rent(hyper.Length * sizeof(float));
        var h = new Buf<float>(block, 0, hyper.Length);
        h.CopyFrom(hyper);
        Adam(d, p, m, v, grad, h, beta1, beta2, eps, skipIf);
    }

    /// <summary>One Adam step with this step's scalars in device memory: <paramref name="hyper"/> =
    /// <see cref="AdamScalars"/> (4 floats). Launch only: nothing is read back or uploaded.</summary>
    public static unsafe void Adam(Device d, Buf<float> p, Buf<float> m, Buf<float> v, Buf<float> grad, Buf<float> hyper,
                                   float beta1, float beta2, float eps, Buf<int> skipIf = default)
    {
        const string op = "Adam";
        Launch.SameLength(op, p.Length, grad.Length, "parameters and gradients");
        Launch.SameLength(op, p.Length, m.Length, "parameters and exp_avg");
        Launch.SameLength(op, p.Length, v.Length, "parameters and exp_avg_sq");
        Launch.SameLength(op, hyper.Length, 4, "step scalars and [step size, sqrt(bc2), decay, l2]");
        if (skipIf.IsValid && skipIf.Length < 1) throw new ArgumentException($"{op}: empty skip flag");
        if (p.Length == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            if (HostSkips(skipIf)) return;
            float* pp = p.Ptr, pm = m.Ptr, pv = v.Ptr, pg = grad.Ptr, ph = hyper.Ptr;
            float stepSize = ph[0], bc2Sqrt = ph[1], decay = ph[2], l2 = ph[3];
            HostChunks(p.Length, (lo, hi) => AdamHost(pp, pm, pv, pg, lo, hi, beta1, beta2, eps, l2, decay, stepSize, bc2Sqrt));
            return;
        }
        checked { _ = (int)p.Length; }
        K(d).Adam(d.Grid(p.Length), p.View, m.View, v.View, grad.View, SkipView(d, skipIf), hyper.View, beta1, beta2, eps);
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
    /// while <paramref name="skipIf"/>[0] is non-zero (default: no flag). Uploads the step's scalars
    /// (a host copy), as the Adam overload of the same form.
    /// </summary>
    public static void Sgd(Device d, Buf<float> p, Buf<float> buf, Buf<float> grad, float lr, float momentum,
                           float dampening, float weightDecay, bool nesterov, bool firstStep, Buf<int> skipIf = default)
    {
        var hyper = SgdScalars(lr, weightDecay, firstStep);
        using var block = d.Pool.Rent(hyper.Length * sizeof(float));
        var h = new Buf<float>(block, 0, hyper.Length);
        h.CopyFrom(hyper);
        Sgd(d, p, buf, grad, h, momentum, dampening, nesterov, skipIf);
    }

    /// <summary>One SGD step with this step's scalars in device memory: <paramref name="hyper"/> =
    /// <see cref="SgdScalars"/> (3 floats). Launch only.</summary>
    public static unsafe void Sgd(Device d, Buf<float> p, Buf<float> buf, Buf<float> grad, Buf<float> hyper, float momentum,
                                  float dampening, bool nesterov, Buf<int> skipIf = default)
    {
        const string op = "SGD";
        Launch.SameLength(op, p.Length, grad.Length, "parameters and gradients");
        if (momentum != 0f) Launch.SameLength(op, p.Length, buf.Length, "parameters and momentum_buffer");
        Launch.SameLength(op, hyper.Length, 3, "step scalars and [lr, first step, weight decay]");
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException($"{op}: Nesterov momentum requires a momentum and zero dampening");
        if (skipIf.IsValid && skipIf.Length < 1) throw new ArgumentException($"{op}: empty skip flag");
        if (p.Length == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            if (HostSkips(skipIf)) return;
            float* pp = p.Ptr, pb = momentum != 0f ? buf.Ptr : null, pg = grad.Ptr;
            float lr = hyper.Ptr[0], weightDecay = hyper.Ptr[2];
            bool firstStep = hyper.Ptr[1] != 0f;
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
        K(d).Sgd(d.Grid(p.Length), p.View, bufView, grad.View, SkipView(d, skipIf), hyper.View, momentum, dampening, nesterov ? 1 : 0);
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
