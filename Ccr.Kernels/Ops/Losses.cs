using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Task losses reduced to a scalar: softmax cross-entropy with ignore index and class weights,
/// masked L1, balanced BCE with logits. Each forward writes <c>stats = [loss, denominator]</c>
/// (2 floats on the device), so that the backward reads the denominator on the device and never
/// synchronises with the host. Gradients are written (=), never accumulated.
/// CUDA variant: a grid-stride kernel over pixels that reduces (numerator, denominator) per group
/// (BlockReduce) into partials, then one group that reduces the partials (two-stage reduction).
/// CPU variant: host code, Parallel.For over pixel chunks with float64 partial sums.
/// Empty reductions (every pixel ignored) give loss 0 and gradient 0 — PyTorch gives NaN there; a
/// batch whose crops are all void should not poison a training run.
/// float64 references: Losses.Reference.cs.
/// </summary>
internal static partial class Losses
{
    // Stage 2: one group reduces the per-group partials (numerator in [0, G), denominator in
    // [G, 2G)) into stats = [num / den (0 when den == 0), den].
    static void FinishKernel(ArrayView<float> stats, ArrayView<float> partials, int groups)
    {
        float a = 0f, b = 0f;
        for (int i = Group.IdxX; i < groups; i += Group.DimX) { a += partials[i]; b += partials[groups + i]; }
        var r = BlockReduce.Sum2(a, b);
        if (Group.IdxX == 0) { stats[0] = r.Y > 0f ? r.X / r.Y : 0f; stats[1] = r.Y; }
    }

    static float Softplus(float x) => XMath.Max(x, 0f) + XMath.Log(1f + XMath.Exp(-XMath.Abs(x)));
    static float Sigmoid(float x)
    {
        // stable for both signs: exp of a non-positive number only
        float e = XMath.Exp(-XMath.Abs(x));
        return x >= 0f ? 1f / (1f + e) : e / (1f + e);
    }

    // ---------------------------------------------------------------- cross-entropy kernels

    // logits (N, C, HW), labels (N, HW), weights (C) when hasWeights; pixels = N * HW.
    // Per pixel: l = logsumexp(x) - x_y, weight w_y (1 without weights); labels outside [0, C)
    // (the ignore index, or a bad label that escaped the host check) are skipped.
    static void CrossEntropyKernel(ArrayView<float> partials, ArrayView<float> logits, ArrayView<int> labels,
                                   ArrayView<float> weights, int hasWeights, int ignore, int C, int HW, int pixels)
    {
        float num = 0f, den = 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < pixels; i += Launch.Stride)
        {
            int y = labels[i];
            if (y < 0 || y >= C || y == ignore) continue;
            int n = i / HW, p = i - n * HW;
            long b = (long)n * C * HW + p;
            float m = float.NegativeInfinity;
            for (int c = 0; c < C; c++) m = XMath.Max(m, logits[b + (long)c * HW]);
            float s = 0f;
            for (int c = 0; c < C; c++) s += XMath.Exp(logits[b + (long)c * HW] - m);
            float w = hasWeights != 0 ? weights[y] : 1f;
            num += w * (m + XMath.Log(s) - logits[b + (long)y * HW]);
            den += w;
        }
        var r = BlockReduce.Sum2(num, den);
        if (Group.IdxX == 0) { partials[ILGPU.Grid.IdxX] = r.X; partials[ILGPU.Grid.DimX + ILGPU.Grid.IdxX] = r.Y; }
    }

    // dlogits = dloss * w_y / den * (softmax - onehot(y)); 0 on ignored pixels or when den == 0.
    static void CrossEntropyBackwardKernel(ArrayView<float> dlogits, ArrayView<float> dloss, ArrayView<float> stats,
                                           ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> weights,
                                           int hasWeights, int ignore, int C, int HW, int pixels)
    {
        float den = stats[1];
        float g = den > 0f ? dloss[0] / den : 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < pixels; i += Launch.Stride)
        {
            int y = labels[i];
            int n = i / HW, p = i - n * HW;
            long b = (long)n * C * HW + p;
            if (y < 0 || y >= C || y == ignore || den <= 0f)
            {
                for (int c = 0; c < C; c++) dlogits[b + (long)c * HW] = 0f;
                continue;
            }
            float m = float.NegativeInfinity;
            for (int c = 0; c < C; c++) m = XMath.Max(m, logits[b + (long)c * HW]);
            float s = 0f;
            for (int c = 0; c < C; c++) s += XMath.Exp(logits[b + (long)c * HW] - m);
            float scale = g * (hasWeights != 0 ? weights[y] : 1f) / s;
            for (int c = 0; c < C; c++)
            {
                long k = b + (long)c * HW;
                dlogits[k] = scale * XMath.Exp(logits[k] - m) - (c == y ? g * (hasWeights != 0 ? weights[y] : 1f) : 0f);
            }
        }
    }

    // ---------------------------------------------------------------- masked L1 kernels

    // pred, target (N, C, HW). A pixel is valid when no target channel equals ignore and not every
    // target channel is 0. num = sum |p - t| over valid pixels and channels, den = valid pixels.
    static void MaskedL1Kernel(ArrayView<float> partials, ArrayView<float> pred, ArrayView<float> target,
                               float ignore, int C, int HW, int pixels)
    {
        float num = 0f, den = 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < pixels; i += Launch.Stride)
        {
            int n = i / HW, p = i - n * HW;
            long b = (long)n * C * HW + p;
            if (!PixelValid(target, b, ignore, C, HW)) continue;
            for (int c = 0; c < C; c++) num += XMath.Abs(pred[b + (long)c * HW] - target[b + (long)c * HW]);
            den += 1f;
        }
        var r = BlockReduce.Sum2(num, den);
        if (Group.IdxX == 0) { partials[ILGPU.Grid.IdxX] = r.X; partials[ILGPU.Grid.DimX + ILGPU.Grid.IdxX] = r.Y; }
    }

    static bool PixelValid(ArrayView<float> target, long b, float ignore, int C, int HW)
    {
        bool any = false;
        for (int c = 0; c < C; c++)
        {
            float t = target[b + (long)c * HW];
            if (t == ignore) return false;
            any |= t != 0f;
        }
        return any;
    }

    // dpred = dloss * sign(p - t) / den on valid pixels (0 where p == t, PyTorch's L1 subgradient).
    static void MaskedL1BackwardKernel(ArrayView<float> dpred, ArrayView<float> dloss, ArrayView<float> stats,
                                       ArrayView<float> pred, ArrayView<float> target, float ignore, int C, int HW, int pixels)
    {
        float den = stats[1];
        float g = den > 0f ? dloss[0] / den : 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < pixels; i += Launch.Stride)
        {
            int n = i / HW, p = i - n * HW;
            long b = (long)n * C * HW + p;
            bool valid = PixelValid(target, b, ignore, C, HW);
            for (int c = 0; c < C; c++)
            {
                long k = b + (long)c * HW;
                float diff = pred[k] - target[k];
                dpred[k] = valid ? (diff > 0f ? g : diff < 0f ? -g : 0f) : 0f;
            }
        }
    }

    // ---------------------------------------------------------------- balanced BCE kernels

    // Elementwise over logits and target (same shape): valid where target != ignore;
    // l = w * y * softplus(-x) + (1 - w) * (1 - y) * softplus(x); num = sum l, den = valid count.
    static void BalancedBceKernel(ArrayView<float> partials, ArrayView<float> logits, ArrayView<float> target,
                                  float w, float ignore)
    {
        float num = 0f, den = 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < logits.IntLength; i += Launch.Stride)
        {
            float y = target[i];
            if (y == ignore) continue;
            float x = logits[i];
            num += w * y * Softplus(-x) + (1f - w) * (1f - y) * Softplus(x);
            den += 1f;
        }
        var r = BlockReduce.Sum2(num, den);
        if (Group.IdxX == 0) { partials[ILGPU.Grid.IdxX] = r.X; partials[ILGPU.Grid.DimX + ILGPU.Grid.IdxX] = r.Y; }
    }

    // dl/dx = -w * y * (1 - sigmoid(x)) + (1 - w) * (1 - y) * sigmoid(x), times dloss / den.
    static void BalancedBceBackwardKernel(ArrayView<float> dlogits, ArrayView<float> dloss, ArrayView<float> stats,
                                          ArrayView<float> logits, ArrayView<float> target, float w, float ignore)
    {
        float den = stats[1];
        float g = den > 0f ? dloss[0] / den : 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < logits.IntLength; i += Launch.Stride)
        {
            float y = target[i];
            if (y == ignore) { dlogits[i] = 0f; continue; }
            float s = Sigmoid(logits[i]);
            dlogits[i] = g * (-w * y * (1f - s) + (1f - w) * (1f - y) * s);
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> Finish;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int> Ce;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int> CeBackward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int> L1;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int> L1Backward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float> Bce;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float> BceBackward;

        public Kernels(Device d)
        {
            Finish = d.Load<ArrayView<float>, ArrayView<float>, int>(FinishKernel);
            Ce = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int>(CrossEntropyKernel);
            CeBackward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int>(CrossEntropyBackwardKernel);
            L1 = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int>(MaskedL1Kernel);
            L1Backward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int>(MaskedL1BackwardKernel);
            Bce = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float>(BalancedBceKernel);
            BceBackward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float>(BalancedBceBackwardKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    // Runs a stage-1 kernel that writes 2 * groups partials, then the finish kernel into stats.
    static void Reduce(Device d, Buf<float> stats, long work, Action<KernelConfig, ArrayView<float>> stage1)
    {
        var cfg = d.Grid(Math.Max(1, work));
        BlockReduce.CheckGroup(d, d.GroupSize, "loss reduction");
        int groups = cfg.GridDim.X;
        using var block = d.Pool.Rent(2L * groups * sizeof(float));
        var partials = new Buf<float>(block, 0, 2L * groups);
        stage1(cfg, partials.View);
        int g2 = BlockReduce.GroupFor(d, groups);
        BlockReduce.CheckGroup(d, g2, "loss reduction");
        K(d).Finish(new KernelConfig(1, g2), stats.View, partials.View, groups);
    }

    static void CheckStats(string op, Buf<float> stats)
    {
        if (stats.Length != 2) throw new ArgumentException($"{op}: stats must hold 2 floats [loss, denominator], got {stats.Length}");
    }

    static void CheckScalar(string op, Buf<float> dloss)
    {
        if (dloss.Length != 1) throw new ArgumentException($"{op}: the upstream gradient must be one float, got {dloss.Length}");
    }

    /// <summary>Sum of per-chunk (numerator, denominator) pairs computed in parallel on the host.</summary>
    static (double Num, double Den) HostSum(long count, Func<long, long, (double, double)> chunk)
    {
        const long Chunk = 4096;
        long chunks = (count + Chunk - 1) / Chunk;
        var parts = new (double, double)[chunks];
        Parallel.For(0, chunks, k => parts[k] = chunk(k * Chunk, Math.Min(count, (k + 1) * Chunk)));
        double num = 0, den = 0;
        foreach (var (a, b) in parts) { num += a; den += b; }
        return (num, den);
    }

    static void HostParallel(long count, Action<long, long> chunk)
    {
        const long Chunk = 4096;
        long chunks = (count + Chunk - 1) / Chunk;
        Parallel.For(0, chunks, k => chunk(k * Chunk, Math.Min(count, (k + 1) * Chunk)));
    }

    // ---------------------------------------------------------------- public entry points

    static void CeShapes(string op, Buf<float> logits, Buf<int> labels, Buf<float> weights, bool hasWeights, int N, int C, int HW)
    {
        if (N < 0 || C <= 0 || HW < 0) throw new ArgumentException($"{op}: bad sizes N={N} C={C} HW={HW}");
        Launch.SameLength(op, logits.Length, (long)N * C * HW, "logits (N, C, H, W) and N*C*H*W");
        Launch.SameLength(op, labels.Length, (long)N * HW, "labels (N, H, W) and N*H*W");
        if (hasWeights && weights.Length != C) throw new ArgumentException($"{op}: {weights.Length} class weights for {C} classes");
    }

    /// <summary>Softmax cross-entropy, mean over pixels with a label in [0, C):
    /// stats = [sum_i w_{y_i} (logsumexp(x_i) - x_{i,y_i}) / sum_i w_{y_i}, sum_i w_{y_i}].
    /// Labels equal to <paramref name="ignoreIndex"/> or outside [0, C) are skipped; <paramref name="weights"/> is read only
    /// when <paramref name="hasWeights"/> (any non-empty buffer may be passed otherwise).</summary>
    public static unsafe void CrossEntropy(Device d, Buf<float> stats, Buf<float> logits, Buf<int> labels,
                                           Buf<float> weights, bool hasWeights, int ignoreIndex, int N, int C, int HW)
    {
        const string op = "cross_entropy";
        CheckStats(op, stats);
        CeShapes(op, logits, labels, weights, hasWeights, N, C, HW);
        long pixels = (long)N * HW;
        if (Host(d))
        {
            d.Synchronize();
            float* x = logits.Ptr; int* lab = labels.Ptr; float* w = hasWeights ? weights.Ptr : null;
            var (num, den) = CeHostForward(x, lab, w, ignoreIndex, N, C, HW);
            stats.Span[0] = den > 0 ? (float)(num / den) : 0f;
            stats.Span[1] = (float)den;
            return;
        }
        var k = K(d);
        Reduce(d, stats, pixels, (cfg, part) => k.Ce(cfg, part, logits.View, labels.View, weights.View, hasWeights ? 1 : 0, ignoreIndex, C, HW, checked((int)pixels)));
    }

    /// <summary>dlogits = dloss * w_y / stats[1] * (softmax(x) - onehot(y)); 0 on skipped pixels and
    /// everywhere when the denominator is 0. <paramref name="stats"/> is the forward's output.</summary>
    public static unsafe void CrossEntropyBackward(Device d, Buf<float> dlogits, Buf<float> dloss, Buf<float> stats,
                                                   Buf<float> logits, Buf<int> labels, Buf<float> weights, bool hasWeights, int ignoreIndex,
                                                   int N, int C, int HW)
    {
        const string op = "cross_entropy backward";
        CheckStats(op, stats); CheckScalar(op, dloss);
        CeShapes(op, logits, labels, weights, hasWeights, N, C, HW);
        Launch.SameLength(op, dlogits.Length, logits.Length, "dlogits and logits");
        long pixels = (long)N * HW;
        if (pixels == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            float den = stats.Span[1];
            float g = den > 0f ? dloss.Span[0] / den : 0f;
            float* x = logits.Ptr, dx = dlogits.Ptr; int* lab = labels.Ptr; float* w = hasWeights ? weights.Ptr : null;
            CeHostBackward(dx, g, den, x, lab, w, ignoreIndex, N, C, HW);
            return;
        }
        K(d).CeBackward(d.Grid(pixels), dlogits.View, dloss.View, stats.View, logits.View, labels.View, weights.View,
                        hasWeights ? 1 : 0, ignoreIndex, C, HW, checked((int)pixels));
    }

    // CPU variant of cross-entropy: blocks of up to CeBlock contiguous pixels of one image, so every
    // channel row x[n, c, p0:p1] is a contiguous span and the max / exp / sum run as SIMD over pixels
    // (TensorPrimitives) instead of strided scalar loops over channels.
    const int CeBlock = 512;

    static unsafe (double Num, double Den) CeHostForward(float* x, int* lab, float* w, int ignore, int N, int C, int HW)
    {
        long blocksPerImage = (HW + CeBlock - 1) / CeBlock;
        var parts = new (double, double)[N * blocksPerImage];
        Parallel.For(0, N * blocksPerImage, k =>
        {
            long n = k / blocksPerImage;
            int p0 = (int)(k % blocksPerImage) * CeBlock, len = Math.Min(CeBlock, HW - p0);
            Span<float> m = stackalloc float[len], sum = stackalloc float[len], tmp = stackalloc float[len];
            float* img = x + n * C * HW + p0;
            LogSumExpRows(m, sum, tmp, img, C, HW);
            double a = 0, b = 0;
            int* ly = lab + n * HW + p0;
            for (int j = 0; j < len; j++)
            {
                int y = ly[j];
                if (y < 0 || y >= C || y == ignore) continue;
                float wy = w != null ? w[y] : 1f;
                a += wy * (m[j] + MathF.Log(sum[j]) - img[(long)y * HW + j]);
                b += wy;
            }
            parts[k] = (a, b);
        });
        double num = 0, den = 0;
        foreach (var (a, b) in parts) { num += a; den += b; }
        return (num, den);
    }

    // m = max over channels, sum = sum over channels of exp(x - m), per pixel of the block.
    static unsafe void LogSumExpRows(Span<float> m, Span<float> sum, Span<float> tmp, float* img, int C, int HW)
    {
        int len = m.Length;
        m.Fill(float.NegativeInfinity);
        for (int c = 0; c < C; c++)
            System.Numerics.Tensors.TensorPrimitives.Max(m, new ReadOnlySpan<float>(img + (long)c * HW, len), m);
        sum.Clear();
        for (int c = 0; c < C; c++)
        {
            System.Numerics.Tensors.TensorPrimitives.Subtract(new ReadOnlySpan<float>(img + (long)c * HW, len), m, tmp);
            System.Numerics.Tensors.TensorPrimitives.Exp(tmp, tmp);
            System.Numerics.Tensors.TensorPrimitives.Add(sum, tmp, sum);
        }
    }

    static unsafe void CeHostBackward(float* dx, float g, float den, float* x, int* lab, float* w, int ignore, int N, int C, int HW)
    {
        long blocksPerImage = (HW + CeBlock - 1) / CeBlock;
        Parallel.For(0, N * blocksPerImage, k =>
        {
            long n = k / blocksPerImage;
            int p0 = (int)(k % blocksPerImage) * CeBlock, len = Math.Min(CeBlock, HW - p0);
            Span<float> m = stackalloc float[len], sum = stackalloc float[len], tmp = stackalloc float[len];
            float* img = x + n * C * HW + p0, dimg = dx + n * C * HW + p0;
            int* ly = lab + n * HW + p0;
            if (den <= 0f)
            {
                for (int c = 0; c < C; c++) new Span<float>(dimg + (long)c * HW, len).Clear();
                return;
            }
            LogSumExpRows(m, sum, tmp, img, C, HW);
            // scale = g * w_y / sum on valid pixels, 0 on ignored ones (their whole column becomes 0)
            for (int j = 0; j < len; j++)
            {
                int y = ly[j];
                sum[j] = y < 0 || y >= C || y == ignore ? 0f : g * (w != null ? w[y] : 1f) / sum[j];
            }
            for (int c = 0; c < C; c++)
            {
                var row = new Span<float>(dimg + (long)c * HW, len);
                System.Numerics.Tensors.TensorPrimitives.Subtract(new ReadOnlySpan<float>(img + (long)c * HW, len), m, row);
                System.Numerics.Tensors.TensorPrimitives.Exp(row, row);
                System.Numerics.Tensors.TensorPrimitives.Multiply(row, sum, row);
            }
            for (int j = 0; j < len; j++)
            {
                int y = ly[j];
                if (y >= 0 && y < C && y != ignore) dimg[(long)y * HW + j] -= g * (w != null ? w[y] : 1f);
            }
        });
    }

    static void L1Shapes(string op, Buf<float> pred, Buf<float> target, int N, int C, int HW)
    {
        if (N < 0 || C <= 0 || HW < 0) throw new ArgumentException($"{op}: bad sizes N={N} C={C} HW={HW}");
        Launch.SameLength(op, pred.Length, (long)N * C * HW, "pred (N, C, H, W) and N*C*H*W");
        Launch.SameLength(op, target.Length, pred.Length, "target and pred");
    }

    static unsafe bool HostPixelValid(float* t, long HW, int C, float ignore)
    {
        bool any = false;
        for (int c = 0; c < C; c++)
        {
            float v = t[c * HW];
            if (v == ignore) return false;
            any |= v != 0f;
        }
        return any;
    }

    /// <summary>Masked L1: stats = [sum over valid pixels and channels |p - t| / valid pixels, valid
    /// pixels]. A pixel is valid when no target channel equals <paramref name="ignore"/> and not every
    /// target channel is 0.</summary>
    public static unsafe void MaskedL1(Device d, Buf<float> stats, Buf<float> pred, Buf<float> target,
                                       float ignore, int N, int C, int HW)
    {
        const string op = "masked_l1";
        CheckStats(op, stats);
        L1Shapes(op, pred, target, N, C, HW);
        long pixels = (long)N * HW;
        if (Host(d))
        {
            d.Synchronize();
            float* pp = pred.Ptr, tt = target.Ptr;
            var (num, den) = HostSum(pixels, (lo, hi) =>
            {
                double a = 0, b = 0;
                for (long i = lo; i < hi; i++)
                {
                    long n = i / HW, p = i - n * HW, o = n * C * HW + p;
                    if (!HostPixelValid(tt + o, HW, C, ignore)) continue;
                    for (int c = 0; c < C; c++) a += MathF.Abs(pp[o + c * HW] - tt[o + c * HW]);
                    b += 1;
                }
                return (a, b);
            });
            stats.Span[0] = den > 0 ? (float)(num / den) : 0f;
            stats.Span[1] = (float)den;
            return;
        }
        var k = K(d);
        Reduce(d, stats, pixels, (cfg, part) => k.L1(cfg, part, pred.View, target.View, ignore, C, HW, checked((int)pixels)));
    }

    /// <summary>dpred = dloss * sign(p - t) / stats[1] on valid pixels (0 where p == t), else 0.</summary>
    public static unsafe void MaskedL1Backward(Device d, Buf<float> dpred, Buf<float> dloss, Buf<float> stats,
                                               Buf<float> pred, Buf<float> target, float ignore, int N, int C, int HW)
    {
        const string op = "masked_l1 backward";
        CheckStats(op, stats); CheckScalar(op, dloss);
        L1Shapes(op, pred, target, N, C, HW);
        Launch.SameLength(op, dpred.Length, pred.Length, "dpred and pred");
        long pixels = (long)N * HW;
        if (pixels == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            float den = stats.Span[1];
            float g = den > 0f ? dloss.Span[0] / den : 0f;
            float* pp = pred.Ptr, tt = target.Ptr, dp = dpred.Ptr;
            HostParallel(pixels, (lo, hi) =>
            {
                for (long i = lo; i < hi; i++)
                {
                    long n = i / HW, p = i - n * HW, o = n * C * HW + p;
                    bool valid = HostPixelValid(tt + o, HW, C, ignore);
                    for (int c = 0; c < C; c++)
                    {
                        float diff = pp[o + c * HW] - tt[o + c * HW];
                        dp[o + c * HW] = valid ? (diff > 0f ? g : diff < 0f ? -g : 0f) : 0f;
                    }
                }
            });
            return;
        }
        K(d).L1Backward(d.Grid(pixels), dpred.View, dloss.View, stats.View, pred.View, target.View, ignore, C, HW, checked((int)pixels));
    }

    static double HostSoftplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));

    /// <summary>Balanced BCE with logits (ATRC / InvPT's BalancedBinaryCrossEntropyLoss with a fixed
    /// pos_weight w): stats = [mean over targets != ignore of w*y*softplus(-x) + (1-w)*(1-y)*softplus(x),
    /// valid count].</summary>
    public static unsafe void BalancedBce(Device d, Buf<float> stats, Buf<float> logits, Buf<float> target, float posWeight, float ignore)
    {
        const string op = "balanced_bce";
        CheckStats(op, stats);
        Launch.SameLength(op, logits.Length, target.Length, "logits and target");
        if (Host(d))
        {
            d.Synchronize();
            float* x = logits.Ptr, t = target.Ptr;
            double w = posWeight;
            var (num, den) = HostSum(logits.Length, (lo, hi) =>
            {
                double a = 0, b = 0;
                for (long i = lo; i < hi; i++)
                {
                    float y = t[i];
                    if (y == ignore) continue;
                    a += w * y * HostSoftplus(-x[i]) + (1 - w) * (1 - y) * HostSoftplus(x[i]);
                    b += 1;
                }
                return (a, b);
            });
            stats.Span[0] = den > 0 ? (float)(num / den) : 0f;
            stats.Span[1] = (float)den;
            return;
        }
        var k = K(d);
        checked { _ = (int)logits.Length; }
        Reduce(d, stats, logits.Length, (cfg, part) => k.Bce(cfg, part, logits.View, target.View, posWeight, ignore));
    }

    /// <summary>dlogits = dloss / stats[1] * (-w*y*(1 - sigmoid(x)) + (1-w)*(1-y)*sigmoid(x)) where
    /// target != ignore, else 0.</summary>
    public static unsafe void BalancedBceBackward(Device d, Buf<float> dlogits, Buf<float> dloss, Buf<float> stats,
                                                  Buf<float> logits, Buf<float> target, float posWeight, float ignore)
    {
        const string op = "balanced_bce backward";
        CheckStats(op, stats); CheckScalar(op, dloss);
        Launch.SameLength(op, logits.Length, target.Length, "logits and target");
        Launch.SameLength(op, dlogits.Length, logits.Length, "dlogits and logits");
        if (logits.Length == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            float den = stats.Span[1];
            float g = den > 0f ? dloss.Span[0] / den : 0f;
            float w = posWeight;
            float* x = logits.Ptr, t = target.Ptr, dx = dlogits.Ptr;
            HostParallel(logits.Length, (lo, hi) =>
            {
                for (long i = lo; i < hi; i++)
                {
                    float y = t[i];
                    if (y == ignore) { dx[i] = 0f; continue; }
                    float e = MathF.Exp(-MathF.Abs(x[i]));
                    float s = x[i] >= 0f ? 1f / (1f + e) : e / (1f + e);
                    dx[i] = g * (-w * y * (1f - s) + (1f - w) * (1f - y) * s);
                }
            });
            return;
        }
        K(d).BceBackward(d.Grid(logits.Length), dlogits.View, dloss.View, stats.View, logits.View, target.View, posWeight, ignore);
    }
}
