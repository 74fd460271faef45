using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Ops;

/// <summary>Scalars of the batch-norm kernels (one struct keeps the kernel signatures short).</summary>
internal struct BnParams
{
    public ChannelSplit Split;
    public float Momentum, Eps;
    /// <summary>1/0 flags: batch statistics (else running), ReLU after the add, a residual operand,
    /// move the running statistics.</summary>
    public int Training, Relu, HasResidual, UpdateRunning;
}

/// <summary>
/// Batch norm 2d fused with an optional residual add and ReLU, as torch.nn.functional.batch_norm
/// followed by <c>relu(y + residual)</c>:   y = act(bn(x) + residual).   x, y, residual (N, C, H, W)
/// Forward: statistics, then ONE pass that normalises, adds and clamps. Training uses the batch mean
/// and biased variance and moves the running statistics in place by momentum with the unbiased
/// variance (PyTorch); eval uses the running statistics. Backward: ONE reduction pass (sums of dz
/// and dz * (x - mean), dz = dy masked by y &gt; 0 when fused with ReLU; dz is also the residual's
/// gradient), then ONE pass for dx. dx, dresidual, dweight, dbias are written (=); the caller
/// accumulates into parameter gradients.
/// CUDA variant (this file): every pass is split over many groups per channel (<see cref="ChannelSplit"/>):
/// the statistics pass writes per-group partials (sum and M2 about the group's own mean: exact two
/// passes over a chunk that is still in cache), and each group of the next pass combines its
/// channel's partials in part order (Chan's formula) before streaming its chunk, so there is no
/// separate finalise launch and no atomics: training forward = 2 launches, eval forward = 1,
/// backward = 2, all deterministic. CPU variant: host SIMD code (BatchNorm.Host.cs).
/// float64 reference: BatchNorm.Reference.cs.
/// </summary>
internal static partial class BatchNorm
{
    // ---------------------------------------------------------------- kernels

    // Statistics pass: group g = (channel, part) writes sum[g] and M2[g] = sum (x - mean_g)^2 over
    // its range (mean_g its own mean).   partials (2 * groups): sums, then M2s.
    static void StatsPartialKernel(ArrayView<float> partials, ArrayView<float> x, ChannelSplit s)
    {
        int g = ILGPU.Grid.IdxX, c = g / s.Parts, part = g - c * s.Parts, t = Group.IdxX, st = Group.DimX;
        long lo = s.Lo(part), hi = s.Lo(part + 1);
        float acc = 0f;
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var q = s.Segment(n, c, lo, hi);
            int i = q.A + t;
            for (; i + 3 * st < q.B; i += 4 * st)
            {
                float x0 = x[q.Base + i], x1 = x[q.Base + i + st], x2 = x[q.Base + i + 2 * st], x3 = x[q.Base + i + 3 * st];
                acc += (x0 + x1) + (x2 + x3);
            }
            for (; i < q.B; i += st) acc += x[q.Base + i];
        }
        float sum = BlockReduce.Sum(acc);
        float cnt = hi - lo;
        float mu = cnt > 0f ? sum / cnt : 0f;
        acc = 0f;
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var q = s.Segment(n, c, lo, hi);
            for (int i = q.A + t; i < q.B; i += st) { float dv = x[q.Base + i] - mu; acc += dv * dv; }
        }
        float m2 = BlockReduce.Sum(acc);
        if (t == 0) { partials[g] = sum; partials[s.Groups + g] = m2; }
    }

    /// <summary>Mean and M2 of channel c from its parts' (sum, M2) partials, in part order (Chan et
    /// al.): M2 = sum_p M2_p + n_p * (mean_p - mean)^2. Every group of the channel gets the same bits.</summary>
    static Float2 CombineStats(ArrayView<float> partials, ChannelSplit s, int c)
    {
        float acc = 0f;
        for (int p = Group.IdxX; p < s.Parts; p += Group.DimX) acc += partials[c * s.Parts + p];
        float mu = BlockReduce.Sum(acc) / s.M;
        acc = 0f;
        for (int p = Group.IdxX; p < s.Parts; p += Group.DimX)
        {
            float cnt = s.Lo(p + 1) - s.Lo(p);
            float dm = cnt > 0f ? partials[c * s.Parts + p] / cnt - mu : 0f;
            acc += partials[s.Groups + c * s.Parts + p] + cnt * dm * dm;
        }
        return new Float2(mu, BlockReduce.Sum(acc));
    }

    static float Act(float v, int relu) => relu != 0 && v <= 0f ? 0f : v; // NaN passes, as torch.relu

    // Forward pass: group (channel, part) gets its channel's statistics (combined from the
    // partials in training, the running ones in eval), then y = act(x * scale + shift + residual)
    // over its range. Part 0 writes mean / invstd (saved for backward) and moves the running stats.
    static void ForwardKernel(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> invstd,
                              ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> partials,
                              ArrayView<float> x, ArrayView<float> residual, ArrayView<float> weight, ArrayView<float> bias,
                              BnParams p)
    {
        var s = p.Split;
        int g = ILGPU.Grid.IdxX, c = g / s.Parts, part = g - c * s.Parts, t = Group.IdxX, st = Group.DimX;
        float mu, inv;
        if (p.Training != 0)
        {
            var ms = CombineStats(partials, s, c);
            mu = ms.X;
            inv = 1f / XMath.Sqrt(ms.Y / s.M + p.Eps);
            if (part == 0 && t == 0 && p.UpdateRunning != 0)
            {
                runningMean[c] = (1f - p.Momentum) * runningMean[c] + p.Momentum * mu;
                runningVar[c] = (1f - p.Momentum) * runningVar[c] + p.Momentum * (ms.Y / (s.M - 1));
            }
        }
        else
        {
            mu = runningMean[c];
            inv = 1f / XMath.Sqrt(runningVar[c] + p.Eps);
        }
        if (part == 0 && t == 0) { mean[c] = mu; invstd[c] = inv; }
        float scale = weight[c] * inv, shift = bias[c] - mu * scale;
        long lo = s.Lo(part), hi = s.Lo(part + 1);
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var q = s.Segment(n, c, lo, hi);
            long k = q.Base + q.A + t;
            long end = q.Base + q.B;
            // all loads first (in flight together), then arithmetic, then stores (y may alias x)
            for (; k + 3 * st < end; k += 4 * st)
            {
                float x0 = x[k], x1 = x[k + st], x2 = x[k + 2 * st], x3 = x[k + 3 * st];
                float r0 = 0f, r1 = 0f, r2 = 0f, r3 = 0f;
                if (p.HasResidual != 0) { r0 = residual[k]; r1 = residual[k + st]; r2 = residual[k + 2 * st]; r3 = residual[k + 3 * st]; }
                float v0 = x0 * scale + shift, v1 = x1 * scale + shift, v2 = x2 * scale + shift, v3 = x3 * scale + shift;
                if (p.HasResidual != 0) { v0 += r0; v1 += r1; v2 += r2; v3 += r3; }
                y[k] = Act(v0, p.Relu); y[k + st] = Act(v1, p.Relu); y[k + 2 * st] = Act(v2, p.Relu); y[k + 3 * st] = Act(v3, p.Relu);
            }
            for (; k < end; k += st)
            {
                float v = x[k] * scale + shift;
                if (p.HasResidual != 0) v += residual[k];
                y[k] = Act(v, p.Relu);
            }
        }
    }

    static float Dz(ArrayView<float> dy, ArrayView<float> y, long k, int relu) => relu != 0 && y[k] <= 0f ? 0f : dy[k];
    static float Masked(float g, float y) => y <= 0f ? 0f : g;

    // Backward reduction pass: group (channel, part) writes sum dz and sum dz * (x - mean) over its
    // range; with a residual it also writes dresidual = dz.   partials (2 * groups)
    static void BackwardPartialKernel(ArrayView<float> partials, ArrayView<float> dresidual, ArrayView<float> dy,
                                      ArrayView<float> y, ArrayView<float> x, ArrayView<float> mean, BnParams p)
    {
        var s = p.Split;
        int g = ILGPU.Grid.IdxX, c = g / s.Parts, part = g - c * s.Parts, t = Group.IdxX, st = Group.DimX;
        float mu = mean[c], a = 0f, b = 0f;
        long lo = s.Lo(part), hi = s.Lo(part + 1);
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var q = s.Segment(n, c, lo, hi);
            long k = q.Base + q.A + t;
            long end = q.Base + q.B;
            for (; k + 3 * st < end; k += 4 * st)
            {
                // all loads first: dy, x, and y for the mask (a uniform branch)
                float d0 = dy[k], d1 = dy[k + st], d2 = dy[k + 2 * st], d3 = dy[k + 3 * st];
                float x0 = x[k], x1 = x[k + st], x2 = x[k + 2 * st], x3 = x[k + 3 * st];
                if (p.Relu != 0)
                {
                    float y0 = y[k], y1 = y[k + st], y2 = y[k + 2 * st], y3 = y[k + 3 * st];
                    d0 = Masked(d0, y0); d1 = Masked(d1, y1); d2 = Masked(d2, y2); d3 = Masked(d3, y3);
                }
                a += (d0 + d1) + (d2 + d3);
                b += (d0 * (x0 - mu) + d1 * (x1 - mu)) + (d2 * (x2 - mu) + d3 * (x3 - mu));
                if (p.HasResidual != 0) { dresidual[k] = d0; dresidual[k + st] = d1; dresidual[k + 2 * st] = d2; dresidual[k + 3 * st] = d3; }
            }
            for (; k < end; k += st)
            {
                float dz = Dz(dy, y, k, p.Relu);
                a += dz;
                b += dz * (x[k] - mu);
                if (p.HasResidual != 0) dresidual[k] = dz;
            }
        }
        var r = BlockReduce.Sum2(a, b);
        if (t == 0) { partials[g] = r.X; partials[s.Groups + g] = r.Y; }
    }

    // Backward dx pass: group (channel, part) combines its channel's partials (part order) into
    // dbias and dweight (part 0 writes them), then dx = A * dz + B * x + C0 over its range, where
    // dz is read from dzSource (dresidual when there is one: already masked) or made from dy and y.
    static void BackwardDxKernel(ArrayView<float> dx, ArrayView<float> dweight, ArrayView<float> dbias,
                                 ArrayView<float> partials, ArrayView<float> dzSource, ArrayView<float> y, ArrayView<float> x,
                                 ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> weight, BnParams p)
    {
        var s = p.Split;
        int g = ILGPU.Grid.IdxX, c = g / s.Parts, part = g - c * s.Parts, t = Group.IdxX, st = Group.DimX;
        float a0 = 0f, b0 = 0f;
        for (int q = t; q < s.Parts; q += st) { a0 += partials[c * s.Parts + q]; b0 += partials[s.Groups + c * s.Parts + q]; }
        var r = BlockReduce.Sum2(a0, b0);
        float mu = mean[c], inv = invstd[c];
        float db = r.X, dw = r.Y * inv;
        if (part == 0 && t == 0) { dbias[c] = db; dweight[c] = dw; }
        // dx = w * inv * (dz - db/M - xhat * dw/M) = A*dz + B*x + C0 (training); A*dz (eval)
        float A = weight[c] * inv;
        float B = p.Training != 0 ? -A * inv * dw / s.M : 0f;
        float C0 = p.Training != 0 ? -A * db / s.M - B * mu : 0f;
        long lo = s.Lo(part), hi = s.Lo(part + 1);
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var q = s.Segment(n, c, lo, hi);
            long k = q.Base + q.A + t;
            long end = q.Base + q.B;
            for (; k + 3 * st < end; k += 4 * st)
            {
                float d0 = dzSource[k], d1 = dzSource[k + st], d2 = dzSource[k + 2 * st], d3 = dzSource[k + 3 * st];
                float x0 = x[k], x1 = x[k + st], x2 = x[k + 2 * st], x3 = x[k + 3 * st];
                if (p.Relu != 0)
                {
                    float y0 = y[k], y1 = y[k + st], y2 = y[k + 2 * st], y3 = y[k + 3 * st];
                    d0 = Masked(d0, y0); d1 = Masked(d1, y1); d2 = Masked(d2, y2); d3 = Masked(d3, y3);
                }
                dx[k] = A * d0 + B * x0 + C0; dx[k + st] = A * d1 + B * x1 + C0;
                dx[k + 2 * st] = A * d2 + B * x2 + C0; dx[k + 3 * st] = A * d3 + B * x3 + C0;
            }
            for (; k < end; k += st) dx[k] = A * Dz(dzSource, y, k, p.Relu) + B * x[k] + C0;
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ChannelSplit> StatsPartial;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BnParams> Forward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, BnParams> BackwardPartial;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BnParams> BackwardDx;

        public Kernels(Device d)
        {
            StatsPartial = d.Load<ArrayView<float>, ArrayView<float>, ChannelSplit>(StatsPartialKernel);
            Forward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BnParams>(ForwardKernel);
            BackwardPartial = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, BnParams>(BackwardPartialKernel);
            BackwardDx = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BnParams>(BackwardDxKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long x, int n, int c, int hw, params (string Name, long Len, long Expected)[] bufs)
    {
        if (n <= 0 || c <= 0 || hw <= 0 || x != (long)n * c * hw)
            throw new ArgumentException($"{op}: x of {x} elements does not match (N={n}, C={c}, H*W={hw})");
        foreach (var (name, len, expected) in bufs)
            if (len != expected)
                throw new ArgumentException($"{op}: {name} has {len} elements, expected {expected} (x is N={n}, C={c}, H*W={hw})");
    }

    /// <summary>
    /// y = act(bn(x) + residual), act = ReLU when <paramref name="relu"/>. Writes mean[c] and
    /// invstd[c] (the statistics used: batch in training, running in eval; saved for backward).
    /// Training with <paramref name="updateRunning"/>: running = (1 - momentum) * running +
    /// momentum * batch, in place, with the unbiased variance. <paramref name="residual"/> null: no
    /// add. y may alias x or the residual. <paramref name="parts"/>: groups per channel on the CUDA
    /// variant (0: chosen from the device; tests force it).
    /// y, x, residual (N, C, H, W); mean, invstd, running*, weight, bias (C)
    /// </summary>
    public static void Forward(Device d, Buf<float> y, Buf<float> mean, Buf<float> invstd, Buf<float> runningMean, Buf<float> runningVar,
                               Buf<float> x, Buf<float>? residual, Buf<float> weight, Buf<float> bias, int n, int c, int hw,
                               bool training, float momentum, float eps, bool relu, bool updateRunning = true, int parts = 0)
    {
        const string op = "BatchNorm.Forward";
        Check(op, x.Length, n, c, hw, ("y", y.Length, x.Length), ("residual", residual?.Length ?? x.Length, x.Length),
              ("mean", mean.Length, c), ("invstd", invstd.Length, c), ("running_mean", runningMean.Length, c),
              ("running_var", runningVar.Length, c), ("weight", weight.Length, c), ("bias", bias.Length, c));
        long m = (long)n * hw;
        if (training && m < 2)
            throw new ArgumentException($"{op}: expected more than 1 value per channel when training, got N={n}, H*W={hw}");
        if (Reductions.Host(d))
        {
            ForwardHost(y, mean, invstd, runningMean, runningVar, x, residual, weight, bias, n, c, hw,
                        training, momentum, eps, relu, updateRunning);
            return;
        }
        var split = ChannelSplit.For(d, n, c, hw, parts);
        int group = split.GroupSize(d);
        BlockReduce.CheckGroup(d, group, op);
        var prm = new BnParams
        {
            Split = split, Momentum = momentum, Eps = eps, Training = training ? 1 : 0, Relu = relu ? 1 : 0,
            HasResidual = residual.HasValue ? 1 : 0, UpdateRunning = updateRunning ? 1 : 0,
        };
        var cfg = new KernelConfig(split.Groups, group);
        var k = K(d);
        using var block = d.Pool.Rent(2L * split.Groups * sizeof(float));
        var partials = new Buf<float>(block, 0, 2L * split.Groups);
        if (training) k.StatsPartial(cfg, partials.View, x.View, split);
        k.Forward(cfg, y.View, mean.View, invstd.View, runningMean.View, runningVar.View, partials.View, x.View,
                  (residual ?? x).View, weight.View, bias.View, prm);
    }

    /// <summary>
    /// Gradients of y = act(bn(x) + residual) from dy, the forward output y (read only for the ReLU
    /// mask), x and the saved mean / invstd. Training: the statistics depend on x; eval: constants.
    /// dx (=), dresidual (=, the masked dy; skipped when null), dweight (=), dbias (=).
    /// dx, dresidual, dy, y, x (N, C, H, W); dweight, dbias, mean, invstd, weight (C)
    /// </summary>
    public static void Backward(Device d, Buf<float> dx, Buf<float>? dresidual, Buf<float> dweight, Buf<float> dbias,
                                Buf<float> dy, Buf<float> y, Buf<float> x, Buf<float> mean, Buf<float> invstd, Buf<float> weight,
                                int n, int c, int hw, bool training, bool relu, int parts = 0)
    {
        const string op = "BatchNorm.Backward";
        Check(op, x.Length, n, c, hw, ("dx", dx.Length, x.Length), ("dresidual", dresidual?.Length ?? x.Length, x.Length),
              ("dy", dy.Length, x.Length), ("y", y.Length, x.Length), ("dweight", dweight.Length, c), ("dbias", dbias.Length, c),
              ("mean", mean.Length, c), ("invstd", invstd.Length, c), ("weight", weight.Length, c));
        if (Reductions.Host(d))
        {
            BackwardHost(dx, dresidual, dweight, dbias, dy, y, x, mean, invstd, weight, n, c, hw, training, relu);
            return;
        }
        var split = ChannelSplit.For(d, n, c, hw, parts);
        int group = split.GroupSize(d);
        BlockReduce.CheckGroup(d, group, op);
        var prm = new BnParams
        {
            Split = split, Training = training ? 1 : 0, Relu = relu ? 1 : 0, HasResidual = dresidual.HasValue ? 1 : 0,
        };
        var cfg = new KernelConfig(split.Groups, group);
        var k = K(d);
        using var block = d.Pool.Rent(2L * split.Groups * sizeof(float));
        var partials = new Buf<float>(block, 0, 2L * split.Groups);
        k.BackwardPartial(cfg, partials.View, (dresidual ?? dx).View, dy.View, y.View, x.View, mean.View, prm);
        // With a residual, dz was written there (masked already): read it instead of dy and y.
        var dxPrm = prm;
        if (dresidual.HasValue) dxPrm.Relu = 0;
        k.BackwardDx(cfg, dx.View, dweight.View, dbias.View, partials.View, (dresidual ?? dy).View, y.View, x.View,
                     mean.View, invstd.View, weight.View, dxPrm);
    }
}
