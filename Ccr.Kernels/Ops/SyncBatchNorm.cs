using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The per-rank pieces of synchronised batch norm (torch.nn.SyncBatchNorm), whose statistics
/// are sums over every rank's part of the batch. Forward: the rank's channel sums
/// (<see cref="Reductions.SumPerChannel"/>) are all-reduced into the global mean, then
/// <see cref="SquaredDeviation"/> against that mean is all-reduced into the global variance, and
/// <see cref="BatchNorm.Forward"/> applies them (as fixed statistics, fused with ReLU and residual
/// when asked). Backward: <see cref="BatchNorm.Backward"/> with fixed statistics gives the rank's dz
/// (dy through the ReLU mask), sum dz and sum dz * xhat; the two sums are all-reduced and
/// <see cref="BackwardDx"/> turns them and the global count M into dx:
/// dx = w * invstd * (dz - sum_dz / M - xhat * sum_dz_xhat / M),  xhat = (x - mean) * invstd.
/// All outputs are written (=). CUDA variant: one group per channel for the sums
/// (<see cref="BlockReduce"/>; no split of a channel over several groups as the plain batch norm
/// does, so few-channel layers fill a GPU poorly), grid-stride for dx. CPU variant: host code over
/// contiguous H*W planes, sums in double. The float64 references are in SyncBatchNorm.Reference.cs.
/// </summary>
internal static partial class SyncBatchNorm
{
    // ---------------------------------------------------------------- kernels

    // One group per channel: ss[c] = sum over (n, i) of (x - mean[c])^2.
    static void SquaredDeviationKernel(ArrayView<float> ss, ArrayView<float> x, ArrayView<float> mean, int n, int c, int hw)
    {
        int ch = ILGPU.Grid.IdxX;
        float mu = mean[ch], acc = 0f;
        for (int j = Group.IdxX; j < n * hw; j += Group.DimX)
        {
            int b = j / hw;
            float dv = x[(b * c + ch) * hw + j - b * hw] - mu;
            acc += dv * dv;
        }
        float s = BlockReduce.Sum(acc);
        if (Group.IdxX == 0) ss[ch] = s;
    }

    // Grid-stride over all elements.
    static void BackwardDxKernel(ArrayView<float> dx, ArrayView<float> dz, ArrayView<float> x, ArrayView<float> mean,
                                 ArrayView<float> invstd, ArrayView<float> weight, ArrayView<float> sdz, ArrayView<float> sdzxhat,
                                 float invCount, int c, int hw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < dx.IntLength; i += Launch.Stride)
        {
            int ch = i / hw % c;
            float inv = invstd[ch];
            dx[i] = weight[ch] * inv * (dz[i] - sdz[ch] * invCount - (x[i] - mean[ch]) * inv * sdzxhat[ch] * invCount);
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> SquaredDeviation;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int> BackwardDx;

        public Kernels(Device d)
        {
            SquaredDeviation = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(SquaredDeviationKernel);
            BackwardDx = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int>(BackwardDxKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long x, int n, int c, int hw, params (string Name, long Len)[] chans)
    {
        if (n <= 0 || c <= 0 || hw <= 0 || x != (long)n * c * hw)
            throw new ArgumentException($"{op}: x of {x} elements does not match (N={n}, C={c}, H*W={hw})");
        foreach (var (name, len) in chans)
            if (len != c) throw new ArgumentException($"{op}: {name} has {len} elements, expected C={c}");
    }

    /// <summary>ss[c] = sum over (n, h, w) of (x - mean[c])^2.   x (N, C, H, W); ss, mean (C)</summary>
    public static void SquaredDeviation(Device d, Buf<float> ss, Buf<float> x, Buf<float> mean, int n, int c, int hw)
    {
        Check("SyncBatchNorm.SquaredDeviation", x.Length, n, c, hw, ("ss", ss.Length), ("mean", mean.Length));
        if (Reductions.Host(d))
        {
            Reductions.HostFor(c, (long)n * hw, ch =>
            {
                var xs = x.Span;
                float mu = mean.Span[ch];
                double s = 0;
                for (int b = 0; b < n; b++) s += DotDeviation(xs.Slice((b * c + ch) * hw, hw), xs.Slice((b * c + ch) * hw, hw), mu, mu);
                ss.Span[ch] = (float)s;
            });
            return;
        }
        int group = BlockReduce.GroupFor(d, (long)n * hw);
        BlockReduce.CheckGroup(d, group, "SyncBatchNorm.SquaredDeviation");
        K(d).SquaredDeviation(new KernelConfig(c, group), ss.View, x.View, mean.View, n, c, hw);
    }

    /// <summary>dx = w * invstd * (dz - sdz / M - xhat * sdzxhat / M), xhat = (x - mean) * invstd, with
    /// the sums and the count M over every rank. dx may alias dz.   dx, dz, x (N, C, H, W); the rest (C)</summary>
    public static void BackwardDx(Device d, Buf<float> dx, Buf<float> dz, Buf<float> x, Buf<float> mean, Buf<float> invstd,
                                  Buf<float> weight, Buf<float> sdz, Buf<float> sdzxhat, long count, int n, int c, int hw)
    {
        Check("SyncBatchNorm.BackwardDx", x.Length, n, c, hw, ("mean", mean.Length), ("invstd", invstd.Length),
              ("weight", weight.Length), ("sdz", sdz.Length), ("sdzxhat", sdzxhat.Length));
        Launch.SameLength("SyncBatchNorm.BackwardDx", dz.Length, x.Length, "dz and x");
        Launch.SameLength("SyncBatchNorm.BackwardDx", dx.Length, x.Length, "dx and x");
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), $"SyncBatchNorm.BackwardDx: count {count}");
        if (Reductions.Host(d))
        {
            // dx = a * dz + bx * x + c0 per plane: a = w invstd, bx = -a invstd sdzxhat / M, c0 = -a sdz / M - bx mean.
            Reductions.HostFor(n * c, hw, p =>
            {
                int ch = p % c;
                double inv = invstd.Span[ch], a = weight.Span[ch] * inv;
                double bx = -a * inv * sdzxhat.Span[ch] / count;
                double c0 = -a * sdz.Span[ch] / count - bx * mean.Span[ch];
                Combine(dx.Span.Slice(p * hw, hw), dz.Span.Slice(p * hw, hw), (float)a, x.Span.Slice(p * hw, hw), (float)bx, (float)c0);
            });
            return;
        }
        K(d).BackwardDx(d.Grid(dx.Length), dx.View, dz.View, x.View, mean.View, invstd.View, weight.View, sdz.View, sdzxhat.View,
                        (float)(1.0 / count), c, hw);
    }

    /// <summary>dx = a * dy + bx * x + c0 in one SIMD pass.</summary>
    static void Combine(Span<float> dx, ReadOnlySpan<float> dy, float a, ReadOnlySpan<float> x, float bx, float c0)
    {
        var ov = MemoryMarshal.Cast<float, Vector<float>>(dx);
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> va = new(a), vb = new(bx), vc = new(c0);
        for (int i = 0; i < xv.Length; i++) ov[i] = gv[i] * va + xv[i] * vb + vc;
        for (int i = xv.Length * Vector<float>.Count; i < x.Length; i++) dx[i] = dy[i] * a + x[i] * bx + c0;
    }

    /// <summary>sum (u - mu) * (x - mx), float SIMD lanes per 4096-chunk, chunks summed in double.</summary>
    static double DotDeviation(ReadOnlySpan<float> u, ReadOnlySpan<float> x, float mu, float mx)
    {
        double total = 0;
        var uv = MemoryMarshal.Cast<float, Vector<float>>(u);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> vmu = new(mu), vmx = new(mx);
        int w = Vector<float>.Count;
        for (int start = 0; start < xv.Length; start += 4096 / w)
        {
            var acc = Vector<float>.Zero;
            int end = Math.Min(xv.Length, start + 4096 / w);
            for (int i = start; i < end; i++) acc += (uv[i] - vmu) * (xv[i] - vmx);
            total += Vector.Sum(acc);
        }
        for (int i = xv.Length * w; i < x.Length; i++) total += (u[i] - (double)mu) * (x[i] - (double)mx);
        return total;
    }
}
