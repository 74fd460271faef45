using System.Numerics;
using System.Runtime.InteropServices;

namespace Ccr.Kernels.Ops;

/// <summary>
/// CPU variant of the fused batch norm (host code on the CPU accelerator's memory, see docs/DESIGN.md):
/// channels in parallel (Reductions.HostFor); within a channel the statistics and the apply pass run
/// back to back, so the channel's planes are still in cache for the second read. SIMD
/// (System.Numerics.Vector) over each contiguous H*W plane; sums accumulate in float lanes over
/// chunks of 4096 and in double across chunks. Each channel is summed by one thread in a fixed
/// order: deterministic.
/// </summary>
internal static partial class BatchNorm
{
    static void ForwardHost(Buf<float> y, Buf<float> mean, Buf<float> invstd, Buf<float> runningMean, Buf<float> runningVar,
                            Buf<float> x, Buf<float>? residual, Buf<float> weight, Buf<float> bias, int n, int c, int hw,
                            bool training, float momentum, float eps, bool relu, bool updateRunning)
    {
        long m = (long)n * hw;
        bool hasRes = residual.HasValue;
        var res = residual ?? x;
        Reductions.HostFor(c, m, ch =>
        {
            var xs = x.Span;
            double mu, inv;
            if (training)
            {
                double s = 0;
                for (int b = 0; b < n; b++) s += Reductions.HostSum(xs.Slice((b * c + ch) * hw, hw));
                mu = s / m;
                double ss = 0;
                for (int b = 0; b < n; b++) ss += SumSquaredDeviation(xs.Slice((b * c + ch) * hw, hw), (float)mu);
                inv = 1.0 / Math.Sqrt(ss / m + eps);
                if (updateRunning)
                {
                    runningMean.Span[ch] = (float)((1 - momentum) * runningMean.Span[ch] + momentum * mu);
                    runningVar.Span[ch] = (float)((1 - momentum) * runningVar.Span[ch] + momentum * (ss / (m - 1)));
                }
            }
            else
            {
                mu = runningMean.Span[ch];
                inv = 1.0 / Math.Sqrt(runningVar.Span[ch] + (double)eps);
            }
            mean.Span[ch] = (float)mu;
            invstd.Span[ch] = (float)inv;
            // y = act(x * scale + shift + residual), scale = w * invstd, shift = b - mean * scale
            float scale = (float)(weight.Span[ch] * inv);
            float shift = (float)(bias.Span[ch] - mu * scale);
            var ys = y.Span; var rs = res.Span;
            for (int b = 0; b < n; b++)
            {
                int o = (b * c + ch) * hw;
                AffineAct(ys.Slice(o, hw), xs.Slice(o, hw), hasRes ? rs.Slice(o, hw) : default, scale, shift, relu);
            }
        });
    }

    static void BackwardHost(Buf<float> dx, Buf<float>? dresidual, Buf<float> dweight, Buf<float> dbias, Buf<float> dy,
                             Buf<float> y, Buf<float> x, Buf<float> mean, Buf<float> invstd, Buf<float> weight,
                             int n, int c, int hw, bool training, bool relu)
    {
        long m = (long)n * hw;
        bool hasRes = dresidual.HasValue;
        var dres = dresidual ?? dx;
        Reductions.HostFor(c, m, ch =>
        {
            var xs = x.Span; var dys = dy.Span; var ys = y.Span; var drs = dres.Span;
            float mu = mean.Span[ch], inv = invstd.Span[ch];
            double sdz = 0, sdzx = 0;
            for (int b = 0; b < n; b++)
            {
                int o = (b * c + ch) * hw;
                var (a, bb) = MaskedSums(dys.Slice(o, hw), relu ? ys.Slice(o, hw) : default, xs.Slice(o, hw), mu,
                                         hasRes ? drs.Slice(o, hw) : default);
                sdz += a; sdzx += bb;
            }
            double dw = sdzx * inv;
            dbias.Span[ch] = (float)sdz;
            dweight.Span[ch] = (float)dw;
            // dx = A*dz + B*x + C0 with A = w*invstd, B = -A*invstd*dw/M, C0 = -A*dbias/M - B*mean (training)
            double A = weight.Span[ch] * (double)inv;
            double B = training ? -A * inv * dw / m : 0;
            double C0 = training ? -A * sdz / m - B * mu : 0;
            var dxs = dx.Span;
            for (int b = 0; b < n; b++)
            {
                int o = (b * c + ch) * hw;
                // with a residual, dz is already in dresidual (masked); else mask dy by y > 0
                if (hasRes) Combine(dxs.Slice(o, hw), drs.Slice(o, hw), default, (float)A, xs.Slice(o, hw), (float)B, (float)C0);
                else Combine(dxs.Slice(o, hw), dys.Slice(o, hw), relu ? ys.Slice(o, hw) : default, (float)A, xs.Slice(o, hw), (float)B, (float)C0);
            }
        });
    }

    // ---------------------------------------------------------------- SIMD helpers

    /// <summary>y = act(a * x + b + r); r empty: no add. act(v) = v &lt;= 0 ? 0 : v (NaN passes, as
    /// torch.relu and the GPU kernel) when <paramref name="relu"/>.</summary>
    static void AffineAct(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> r, float a, float b, bool relu)
    {
        bool hasR = !r.IsEmpty;
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        var rv = MemoryMarshal.Cast<float, Vector<float>>(r);
        Vector<float> va = new(a), vb = new(b);
        for (int i = 0; i < xv.Length; i++)
        {
            var v = xv[i] * va + vb;
            if (hasR) v += rv[i];
            if (relu) v = Vector.ConditionalSelect(Vector.LessThanOrEqual(v, Vector<float>.Zero), Vector<float>.Zero, v);
            yv[i] = v;
        }
        for (int i = xv.Length * Vector<float>.Count; i < x.Length; i++)
        {
            float v = x[i] * a + b;
            if (hasR) v += r[i];
            y[i] = relu && v <= 0f ? 0f : v;
        }
    }

    /// <summary>Sums of dz and dz * (x - m) with dz = dy masked by y &gt; 0 (<paramref name="y"/>
    /// empty: no mask); dz is written to <paramref name="dz"/> unless it is empty.</summary>
    static (double Dz, double DzX) MaskedSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, ReadOnlySpan<float> x, float m,
                                              Span<float> dz)
    {
        bool mask = !y.IsEmpty, write = !dz.IsEmpty;
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        var ov = MemoryMarshal.Cast<float, Vector<float>>(dz);
        var vm = new Vector<float>(m);
        int w = Vector<float>.Count;
        double ta = 0, tb = 0;
        for (int start = 0; start < xv.Length; start += 4096 / w)
        {
            var a = Vector<float>.Zero; var b = Vector<float>.Zero;
            int end = Math.Min(xv.Length, start + 4096 / w);
            for (int i = start; i < end; i++)
            {
                var g = mask ? Vector.ConditionalSelect(Vector.LessThanOrEqual(yv[i], Vector<float>.Zero), Vector<float>.Zero, gv[i]) : gv[i];
                if (write) ov[i] = g;
                a += g;
                b += g * (xv[i] - vm);
            }
            ta += Vector.Sum(a); tb += Vector.Sum(b);
        }
        for (int i = xv.Length * w; i < x.Length; i++)
        {
            float g = mask && y[i] <= 0f ? 0f : dy[i];
            if (write) dz[i] = g;
            ta += g; tb += g * (double)(x[i] - m);
        }
        return (ta, tb);
    }

    /// <summary>dx = a * dz + bx * x + c0 in one pass, dz = dy masked by y &gt; 0 (y empty: no mask).</summary>
    static void Combine(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, float a, ReadOnlySpan<float> x, float bx, float c0)
    {
        bool mask = !y.IsEmpty;
        var ov = MemoryMarshal.Cast<float, Vector<float>>(dx);
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> va = new(a), vb = new(bx), vc = new(c0);
        for (int i = 0; i < xv.Length; i++)
        {
            var g = mask ? Vector.ConditionalSelect(Vector.LessThanOrEqual(yv[i], Vector<float>.Zero), Vector<float>.Zero, gv[i]) : gv[i];
            ov[i] = g * va + xv[i] * vb + vc;
        }
        for (int i = xv.Length * Vector<float>.Count; i < x.Length; i++)
            dx[i] = (mask && y[i] <= 0f ? 0f : dy[i]) * a + x[i] * bx + c0;
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
}
