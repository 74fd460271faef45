using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Channel-wise shape ops on (N, C, H, W): copying a block of channels between tensors (concat
/// along dim 1 and channel slices, forward and backward alike) and per-pixel L2 normalisation over
/// channels (F.normalize(x, dim=1)). Outputs and input gradients are written (=).
/// CUDA variant: grid-stride kernels. CPU variant: span copies and SIMD over the H*W plane.
/// Reference in ShapeOps.Reference.cs; reductions (sum, mean, per-channel sums) are in Reductions.cs.
/// </summary>
internal static partial class ShapeOps
{
    // ---------------------------------------------------------------- kernels

    // dst[n, dstStart + c, i] = src[n, srcStart + c, i] for c < count.
    static void CopyChannelsKernel(ArrayView<float> dst, ArrayView<float> src, int dstC, int dstStart,
                                   int srcC, int srcStart, int count, int n, int hw)
    {
        int total = n * count * hw;
        for (int j = ILGPU.Grid.GlobalIndex.X; j < total; j += Launch.Stride)
        {
            int i = j % hw, t = j / hw, c = t % count, b = t / count;
            dst[(b * dstC + dstStart + c) * hw + i] = src[(b * srcC + srcStart + c) * hw + i];
        }
    }

    // One thread per pixel; channels are hw apart, so neighbouring threads read neighbouring floats.
    static void L2NormalizeKernel(ArrayView<float> y, ArrayView<float> norm, ArrayView<float> x, int c, int hw, float eps)
    {
        for (int p = ILGPU.Grid.GlobalIndex.X; p < norm.IntLength; p += Launch.Stride)
        {
            int b = p / hw, i = p - b * hw, o = b * c * hw + i;
            float ss = 0f;
            for (int ch = 0; ch < c; ch++) { float v = x[o + ch * hw]; ss += v * v; }
            float nrm = XMath.Sqrt(ss);
            norm[p] = nrm;
            float inv = 1f / XMath.Max(nrm, eps);
            for (int ch = 0; ch < c; ch++) y[o + ch * hw] = x[o + ch * hw] * inv;
        }
    }

    // ||x|| > eps: dx = (dy - y * sum_c(dy * y)) / ||x||; else the denominator is the constant eps.
    static void L2NormalizeBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y,
                                          ArrayView<float> norm, int c, int hw, float eps)
    {
        for (int p = ILGPU.Grid.GlobalIndex.X; p < norm.IntLength; p += Launch.Stride)
        {
            int b = p / hw, i = p - b * hw, o = b * c * hw + i;
            float nrm = norm[p];
            float s = 0f;
            if (nrm > eps)
                for (int ch = 0; ch < c; ch++) s += dy[o + ch * hw] * y[o + ch * hw];
            float inv = 1f / XMath.Max(nrm, eps);
            for (int ch = 0; ch < c; ch++) dx[o + ch * hw] = (dy[o + ch * hw] - y[o + ch * hw] * s) * inv;
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int> CopyChannels;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float> L2Normalize;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float> L2NormalizeBackward;

        public Kernels(Device d)
        {
            CopyChannels = d.Load<ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int>(CopyChannelsKernel);
            L2Normalize = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(L2NormalizeKernel);
            L2NormalizeBackward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(L2NormalizeBackwardKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    /// <summary>dst[:, dstStart:dstStart+count] = src[:, srcStart:srcStart+count] (the rest of dst
    /// is untouched). Concat forward / slice backward write into a wider dst; concat backward /
    /// slice forward read from a wider src.   dst (N, dstC, HW), src (N, srcC, HW)</summary>
    public static void CopyChannels(Device d, Buf<float> dst, int dstC, int dstStart, Buf<float> src, int srcC, int srcStart,
                                    int count, int n, int hw)
    {
        if (n < 0 || hw < 0 || count < 0 || dstStart < 0 || srcStart < 0 || dstStart + count > dstC || srcStart + count > srcC
            || dst.Length != (long)n * dstC * hw || src.Length != (long)n * srcC * hw)
            throw new ArgumentException($"CopyChannels: channels [{srcStart}, {srcStart + count}) of src (N={n}, C={srcC}, HW={hw}; " +
                $"{src.Length} elements) into [{dstStart}, {dstStart + count}) of dst (C={dstC}; {dst.Length} elements) do not fit");
        long total = (long)n * count * hw;
        if (total == 0) return;
        if (Reductions.Host(d))
        {
            var ds = dst.Span; var ss = src.Span;
            for (int b = 0; b < n; b++)
                ss.Slice((b * srcC + srcStart) * hw, count * hw).CopyTo(ds.Slice((b * dstC + dstStart) * hw, count * hw));
            return;
        }
        K(d).CopyChannels(d.Grid(total), dst.View, src.View, dstC, dstStart, srcC, srcStart, count, n, hw);
    }

    const int PixelChunk = 2048;

    /// <summary>y = x / max(||x||_2 over channels, eps) per pixel; norm (=) keeps ||x|| for backward.
    /// y, x (N, C, HW); norm (N, HW)</summary>
    public static void L2Normalize(Device d, Buf<float> y, Buf<float> norm, Buf<float> x, int n, int c, int hw, float eps)
    {
        CheckL2("L2Normalize", y.Length, norm.Length, x.Length, n, c, hw);
        if (norm.Length == 0) return;
        if (Reductions.Host(d))
        {
            int chunks = (hw + PixelChunk - 1) / PixelChunk;
            Reductions.HostFor(n * chunks, (long)PixelChunk * c, job =>
            {
                int b = job / chunks, i0 = job % chunks * PixelChunk, len = Math.Min(PixelChunk, hw - i0);
                var xs = x.Span; var ys = y.Span;
                var nrm = norm.Span.Slice(b * hw + i0, len);
                Span<float> inv = stackalloc float[len];
                inv.Clear();
                for (int ch = 0; ch < c; ch++)
                {
                    var xc = xs.Slice((b * c + ch) * hw + i0, len);
                    TensorPrimitives.MultiplyAdd(xc, xc, inv, inv);
                }
                TensorPrimitives.Sqrt(inv, nrm);
                TensorPrimitives.Max(nrm, eps, inv);
                TensorPrimitives.Reciprocal(inv, inv);
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (b * c + ch) * hw + i0;
                    TensorPrimitives.Multiply(xs.Slice(o, len), inv, ys.Slice(o, len));
                }
            });
            return;
        }
        K(d).L2Normalize(d.Grid(norm.Length), y.View, norm.View, x.View, c, hw, eps);
    }

    /// <summary>dx (=) of <see cref="L2Normalize"/> from dy, the forward output y and the saved norm.</summary>
    public static void L2NormalizeBackward(Device d, Buf<float> dx, Buf<float> dy, Buf<float> y, Buf<float> norm,
                                           int n, int c, int hw, float eps)
    {
        CheckL2("L2NormalizeBackward", y.Length, norm.Length, dx.Length, n, c, hw);
        Launch.SameLength("L2NormalizeBackward", dy.Length, dx.Length, "dy and dx");
        if (norm.Length == 0) return;
        if (Reductions.Host(d))
        {
            int chunks = (hw + PixelChunk - 1) / PixelChunk;
            Reductions.HostFor(n * chunks, (long)PixelChunk * c, job =>
            {
                int b = job / chunks, i0 = job % chunks * PixelChunk, len = Math.Min(PixelChunk, hw - i0);
                var dys = dy.Span; var ys = y.Span; var dxs = dx.Span;
                var nrm = norm.Span.Slice(b * hw + i0, len);
                Span<float> s = stackalloc float[len];
                Span<float> inv = stackalloc float[len];
                s.Clear();
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (b * c + ch) * hw + i0;
                    TensorPrimitives.MultiplyAdd(dys.Slice(o, len), ys.Slice(o, len), s, s);
                }
                // dx = dy * inv + y * (-s * inv), with s = 0 where the norm was clamped to eps.
                for (int i = 0; i < len; i++)
                {
                    float iv = 1f / MathF.Max(nrm[i], eps);
                    inv[i] = iv;
                    s[i] = nrm[i] > eps ? -s[i] * iv : 0f;
                }
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (b * c + ch) * hw + i0;
                    var dxc = dxs.Slice(o, len);
                    TensorPrimitives.Multiply(dys.Slice(o, len), inv, dxc);
                    TensorPrimitives.MultiplyAdd(ys.Slice(o, len), s, dxc, dxc);
                }
            });
            return;
        }
        K(d).L2NormalizeBackward(d.Grid(norm.Length), dx.View, dy.View, y.View, norm.View, c, hw, eps);
    }

    static void CheckL2(string op, long y, long norm, long x, int n, int c, int hw)
    {
        if (n < 0 || c <= 0 || hw < 0 || x != (long)n * c * hw || y != x || norm != (long)n * hw)
            throw new ArgumentException($"{op}: x/dx of {x}, y of {y} and norm of {norm} elements do not match (N={n}, C={c}, HW={hw})");
    }
}
