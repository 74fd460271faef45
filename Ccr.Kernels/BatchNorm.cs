using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Batch norm 2d on x (N, C, H, W), as torch.nn.functional.batch_norm. Forward is split in two:
/// statistics (training: batch mean and 1/sqrt(biased var + eps), running stats updated in place
/// with the unbiased variance; eval: taken from the running stats), then the affine normalisation.
/// Backward gives dx (=), dweight and dbias (=; the caller accumulates into parameter gradients).
/// CUDA variant: one group per channel, shared-memory tree reductions. CPU variant: host code,
/// Parallel.For over channels, SIMD over each contiguous H*W plane, sums accumulated in double.
/// The float64 reference is in BatchNorm.Reference.cs.
/// </summary>
public static partial class BatchNorm
{
    // ---------------------------------------------------------------- kernels

    // One group per channel. Two passes (mean, then sum of squared deviations) avoid the
    // cancellation of E[x^2] - E[x]^2 when |mean| >> std.
    static void StatsKernel(ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean,
                            ArrayView<float> runningVar, ArrayView<float> x, int n, int c, int hw,
                            float momentum, float eps, int update)
    {
        var sh = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int ch = ILGPU.Grid.IdxX, m = n * hw;
        float acc = 0f;
        for (int j = Group.IdxX; j < m; j += Group.DimX)
        {
            int b = j / hw;
            acc += x[(b * c + ch) * hw + j - b * hw];
        }
        float mu = Reductions.GroupSum(sh, acc) / m;
        acc = 0f;
        for (int j = Group.IdxX; j < m; j += Group.DimX)
        {
            int b = j / hw;
            float dv = x[(b * c + ch) * hw + j - b * hw] - mu;
            acc += dv * dv;
        }
        float ss = Reductions.GroupSum(sh, acc);
        if (Group.IdxX == 0)
        {
            mean[ch] = mu;
            invstd[ch] = 1f / XMath.Sqrt(ss / m + eps);
            if (update != 0)
            {
                runningMean[ch] = (1f - momentum) * runningMean[ch] + momentum * mu;
                runningVar[ch] = (1f - momentum) * runningVar[ch] + momentum * (ss / (m - 1));
            }
        }
    }

    static void EvalStatsKernel(ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean,
                                ArrayView<float> runningVar, float eps)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < mean.IntLength; i += Launch.Stride)
        {
            mean[i] = runningMean[i];
            invstd[i] = 1f / XMath.Sqrt(runningVar[i] + eps);
        }
    }

    // y = (x - mean) * invstd * weight + bias, grid-stride over all elements.
    static void NormalizeKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
                                ArrayView<float> weight, ArrayView<float> bias, int c, int hw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride)
        {
            int ch = i / hw % c;
            y[i] = (x[i] - mean[ch]) * invstd[ch] * weight[ch] + bias[ch];
        }
    }

    // One group per channel: dbias = sum dy, dweight = sum dy * xhat, then dx in the same group.
    // Training: dx = w * invstd * (dy - dbias/M - xhat * dweight/M); eval: dx = w * invstd * dy.
    static void BackwardKernel(ArrayView<float> dx, ArrayView<float> dweight, ArrayView<float> dbias,
                               ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
                               ArrayView<float> weight, int n, int c, int hw, int training)
    {
        var sh = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        var sh2 = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int ch = ILGPU.Grid.IdxX, m = n * hw;
        float mu = mean[ch], inv = invstd[ch];
        float sdy = 0f, sdyx = 0f;
        for (int j = Group.IdxX; j < m; j += Group.DimX)
        {
            int b = j / hw;
            int k = (b * c + ch) * hw + j - b * hw;
            sdy += dy[k];
            sdyx += dy[k] * (x[k] - mu);
        }
        var sums = Reductions.GroupSum2(sh, sh2, sdy, sdyx);
        float db = sums.X, dw = sums.Y * inv;
        if (Group.IdxX == 0) { dbias[ch] = db; dweight[ch] = dw; }
        float a = weight[ch] * inv;
        float mdb = training != 0 ? db / m : 0f, mdw = training != 0 ? dw / m : 0f;
        for (int j = Group.IdxX; j < m; j += Group.DimX)
        {
            int b = j / hw;
            int k = (b * c + ch) * hw + j - b * hw;
            dx[k] = a * (dy[k] - mdb - (x[k] - mu) * inv * mdw);
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, int, int, int, float, float, int> Stats;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> EvalStats;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, int, int> Normalize;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> Backward;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            Stats = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, float, float, int>(StatsKernel);
            EvalStats = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(EvalStatsKernel);
            Normalize = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, int, int>(NormalizeKernel);
            Backward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(BackwardKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long x, long perChannel, int n, int c, int hw, params (string Name, long Len)[] chans)
    {
        if (n <= 0 || c <= 0 || hw <= 0 || x != (long)n * c * hw)
            throw new ArgumentException($"{op}: x of {x} elements does not match (N={n}, C={c}, H*W={hw})");
        foreach (var (name, len) in chans)
            if (len != perChannel)
                throw new ArgumentException($"{op}: {name} has {len} elements, expected C={c} (x is N={n}, C={c}, H*W={hw})");
    }

    /// <summary>Training statistics: mean[c] and invstd[c] = 1/sqrt(biased var + eps) of x over
    /// (N, H, W); when <paramref name="updateRunning"/>, running = (1-momentum)*running +
    /// momentum*batch with the unbiased variance, in place.   x (N, C, H, W); others (C)</summary>
    public static void Stats(Device d, Buf<float> mean, Buf<float> invstd, Buf<float> runningMean, Buf<float> runningVar,
                             Buf<float> x, int n, int c, int hw, float momentum, float eps, bool updateRunning = true)
    {
        Check("BatchNorm.Stats", x.Length, c, n, c, hw, ("mean", mean.Length), ("invstd", invstd.Length),
              ("running_mean", runningMean.Length), ("running_var", runningVar.Length));
        long m = (long)n * hw;
        if (m < 2)
            throw new ArgumentException($"BatchNorm.Stats: expected more than 1 value per channel when training, got N={n}, H*W={hw}");
        if (Reductions.Host(d))
        {
            Reductions.HostFor(c, m, ch =>
            {
                var xs = x.Span;
                double s = 0;
                for (int b = 0; b < n; b++) s += Reductions.HostSum(xs.Slice((b * c + ch) * hw, hw));
                double mu = s / m;
                double ss = 0;
                for (int b = 0; b < n; b++) ss += SumSquaredDeviation(xs.Slice((b * c + ch) * hw, hw), (float)mu);
                mean.Span[ch] = (float)mu;
                invstd.Span[ch] = (float)(1.0 / Math.Sqrt(ss / m + eps));
                if (updateRunning)
                {
                    runningMean.Span[ch] = (float)((1 - momentum) * runningMean.Span[ch] + momentum * mu);
                    runningVar.Span[ch] = (float)((1 - momentum) * runningVar.Span[ch] + momentum * (ss / (m - 1)));
                }
            });
            return;
        }
        Reductions.CheckGroup(d, "BatchNorm.Stats");
        K(d).Stats(new KernelConfig(c, Reductions.ReduceGroup(d, m)), mean.View, invstd.View, runningMean.View, runningVar.View,
                   x.View, n, c, hw, momentum, eps, updateRunning ? 1 : 0);
    }

    /// <summary>Eval statistics: mean = running_mean, invstd = 1/sqrt(running_var + eps).   all (C)</summary>
    public static void EvalStats(Device d, Buf<float> mean, Buf<float> invstd, Buf<float> runningMean, Buf<float> runningVar, float eps)
    {
        long c = mean.Length;
        if (invstd.Length != c || runningMean.Length != c || runningVar.Length != c)
            throw new ArgumentException($"BatchNorm.EvalStats: buffers of {mean.Length}, {invstd.Length}, {runningMean.Length}, {runningVar.Length} elements differ");
        if (c == 0) return;
        if (Reductions.Host(d))
        {
            var ms = mean.Span; var iv = invstd.Span; var rm = runningMean.Span; var rv = runningVar.Span;
            for (int i = 0; i < ms.Length; i++) { ms[i] = rm[i]; iv[i] = (float)(1.0 / Math.Sqrt(rv[i] + (double)eps)); }
            return;
        }
        K(d).EvalStats(d.Grid(c), mean.View, invstd.View, runningMean.View, runningVar.View, eps);
    }

    /// <summary>y = (x - mean[c]) * invstd[c] * weight[c] + bias[c].   y, x (N, C, H, W); others (C)</summary>
    public static void Normalize(Device d, Buf<float> y, Buf<float> x, Buf<float> mean, Buf<float> invstd,
                                 Buf<float> weight, Buf<float> bias, int n, int c, int hw)
    {
        Check("BatchNorm.Normalize", x.Length, c, n, c, hw, ("mean", mean.Length), ("invstd", invstd.Length),
              ("weight", weight.Length), ("bias", bias.Length));
        Launch.SameLength("BatchNorm.Normalize", y.Length, x.Length, "y and x");
        if (Reductions.Host(d))
        {
            // y = x * scale + shift per plane, with scale = w * invstd, shift = b - mean * scale.
            Reductions.HostFor(n * c, hw, p =>
            {
                int ch = p % c;
                float scale = weight.Span[ch] * invstd.Span[ch];
                float shift = bias.Span[ch] - mean.Span[ch] * scale;
                ScaleShift(y.Span.Slice(p * hw, hw), x.Span.Slice(p * hw, hw), scale, shift);
            });
            return;
        }
        K(d).Normalize(d.Grid(y.Length), y.View, x.View, mean.View, invstd.View, weight.View, bias.View, c, hw);
    }

    /// <summary>Gradients of y = (x - mean) * invstd * w + b. With <paramref name="training"/>,
    /// mean and invstd are the batch statistics and depend on x; otherwise (eval) they are constants.
    /// dx (=), dweight (=), dbias (=).   dx, dy, x (N, C, H, W); others (C)</summary>
    public static void Backward(Device d, Buf<float> dx, Buf<float> dweight, Buf<float> dbias, Buf<float> dy, Buf<float> x,
                                Buf<float> mean, Buf<float> invstd, Buf<float> weight, int n, int c, int hw, bool training)
    {
        Check("BatchNorm.Backward", x.Length, c, n, c, hw, ("dweight", dweight.Length), ("dbias", dbias.Length),
              ("mean", mean.Length), ("invstd", invstd.Length), ("weight", weight.Length));
        Launch.SameLength("BatchNorm.Backward", dx.Length, x.Length, "dx and x");
        Launch.SameLength("BatchNorm.Backward", dy.Length, x.Length, "dy and x");
        if (Reductions.Host(d))
        {
            long m = (long)n * hw;
            Reductions.HostFor(c, m, ch =>
            {
                var xs = x.Span; var dys = dy.Span;
                float mu = mean.Span[ch], inv = invstd.Span[ch];
                double sdy = 0, sdyx = 0;
                for (int b = 0; b < n; b++)
                {
                    int o = (b * c + ch) * hw;
                    sdy += Reductions.HostSum(dys.Slice(o, hw));
                    sdyx += DotDeviation(dys.Slice(o, hw), xs.Slice(o, hw), mu);
                }
                double dw = sdyx * inv;
                dbias.Span[ch] = (float)sdy;
                dweight.Span[ch] = (float)dw;
                // dx = a*dy + bx*x + c0 with a = w*invstd, bx = -a*invstd*dw/M, c0 = -a*dbias/M - bx*mean.
                double a = weight.Span[ch] * (double)inv;
                double bx = training ? -a * inv * dw / m : 0;
                double c0 = training ? -a * sdy / m - bx * mu : 0;
                var dxs = dx.Span;
                for (int b = 0; b < n; b++)
                {
                    int o = (b * c + ch) * hw;
                    Combine(dxs.Slice(o, hw), dys.Slice(o, hw), (float)a, xs.Slice(o, hw), (float)bx, (float)c0);
                }
            });
            return;
        }
        Reductions.CheckGroup(d, "BatchNorm.Backward");
        K(d).Backward(new KernelConfig(c, Reductions.ReduceGroup(d, (long)n * hw)), dx.View, dweight.View, dbias.View, dy.View, x.View,
                      mean.View, invstd.View, weight.View, n, c, hw, training ? 1 : 0);
    }

    // ---------------------------------------------------------------- host helpers (SIMD)

    /// <summary>y = a * x + b.</summary>
    static void ScaleShift(Span<float> y, ReadOnlySpan<float> x, float a, float b)
    {
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> va = new(a), vb = new(b);
        for (int i = 0; i < xv.Length; i++) yv[i] = xv[i] * va + vb;
        for (int i = xv.Length * Vector<float>.Count; i < x.Length; i++) y[i] = x[i] * a + b;
    }

    /// <summary>dx = a * dy + bx * x + c0 in one pass.</summary>
    static void Combine(Span<float> dx, ReadOnlySpan<float> dy, float a, ReadOnlySpan<float> x, float bx, float c0)
    {
        var ov = MemoryMarshal.Cast<float, Vector<float>>(dx);
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> va = new(a), vb = new(bx), vc = new(c0);
        for (int i = 0; i < xv.Length; i++) ov[i] = gv[i] * va + xv[i] * vb + vc;
        for (int i = xv.Length * Vector<float>.Count; i < x.Length; i++) dx[i] = dy[i] * a + x[i] * bx + c0;
    }

    /// <summary>sum (x - m)^2, float lanes per 4096-chunk, chunks summed in double.</summary>
    static double SumSquaredDeviation(ReadOnlySpan<float> x, float m)
    {
        double total = 0;
        var vm = new Vector<float>(m);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        int w = Vector<float>.Count;
        for (int start = 0; start < xv.Length; start += 4096 / w)
        {
            var acc = Vector<float>.Zero;
            int end = Math.Min(xv.Length, start + 4096 / w);
            for (int i = start; i < end; i++) { var dv = xv[i] - vm; acc += dv * dv; }
            total += Vector.Sum(acc);
        }
        for (int i = xv.Length * w; i < x.Length; i++) { double dv = x[i] - m; total += dv * dv; }
        return total;
    }

    /// <summary>sum dy * (x - m), as <see cref="SumSquaredDeviation"/>.</summary>
    static double DotDeviation(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float m)
    {
        double total = 0;
        var vm = new Vector<float>(m);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        int w = Vector<float>.Count;
        for (int start = 0; start < xv.Length; start += 4096 / w)
        {
            var acc = Vector<float>.Zero;
            int end = Math.Min(xv.Length, start + 4096 / w);
            for (int i = start; i < end; i++) acc += gv[i] * (xv[i] - vm);
            total += Vector.Sum(acc);
        }
        for (int i = xv.Length * w; i < x.Length; i++) total += dy[i] * (double)(x[i] - m);
        return total;
    }
}
