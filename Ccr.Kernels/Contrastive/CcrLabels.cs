using Ccr.Kernels.Ops;
using ILGPU;
using ILGPU.Algorithms;

namespace Ccr.Kernels.Contrastive;

/// <summary>
/// A source task's labels in the form CCR mines from, made on the device from the batch's label
/// tensor: nearest downsampling to the projection map (PyTorch's F.interpolate(mode='nearest')
/// index rule, <see cref="Resize.NearestSrc"/>), the validity mask, and binarising. Per output
/// pixel: the source pixel is (NearestSrc(y), NearestSrc(x)); it is valid when every channel is
/// finite and: discrete, not the ignore index 255; L1 (depth), &gt; 0; angle (normals), not the zero
/// vector. Valid values are kept, or binarised (&gt; 0.5 -> 1, else 0) for tasks that ask; invalid
/// pixels get a marker (255 discrete, 0 otherwise) that no later kernel reads (the mask rules).
/// Layouts: source (N, L, H, W) float or (N, H, W) int32 (L = 1); values (N, L, h*w);
/// valid (N, h*w) int32, 1 or 0. Writes both (=). One grid-stride kernel serves both variants (it
/// touches N*h*w pixels once). Reference in CcrLabels.Reference.cs.
/// </summary>
internal static partial class CcrLabels
{
    public const float IgnoreIndex = 255f;

    /// <summary>Is a pixel with channel values (v0, v1, v2) (only the first <paramref name="channels"/> used) usable?</summary>
    public static bool IsValid(int metric, int channels, float v0, float v1, float v2)
    {
        if (!XMath.IsFinite(v0) || channels > 1 && (!XMath.IsFinite(v1) || !XMath.IsFinite(v2))) return false;
        return metric == 0 ? v0 != IgnoreIndex : metric == 1 ? v0 > 0f : v0 != 0f || v1 != 0f || v2 != 0f;
    }

    /// <summary>Sizes and rule of one preparation (one struct keeps the signature short).</summary>
    public struct Args
    {
        public int N, Channels, InH, InW, OutH, OutW, Metric, Binarise, IntSource;
        public float ScaleH, ScaleW;
    }

    static void PrepareKernel(ArrayView<float> values, ArrayView<int> valid, ArrayView<float> src, ArrayView<int> srcInt, Args a)
    {
        int ohw = a.OutH * a.OutW, ihw = a.InH * a.InW, total = a.N * ohw;
        for (int e = ILGPU.Grid.GlobalIndex.X; e < total; e += Launch.Stride)
        {
            int b = e / ohw, o = e - b * ohw, oy = o / a.OutW, ox = o - oy * a.OutW;
            int s = Resize.NearestSrc(oy, a.InH, a.OutH, a.ScaleH) * a.InW + Resize.NearestSrc(ox, a.InW, a.OutW, a.ScaleW);
            int ib = b * a.Channels * ihw + s;
            float v0 = a.IntSource != 0 ? srcInt[b * ihw + s] : src[ib];
            float v1 = a.Channels > 1 ? src[ib + ihw] : 0f, v2 = a.Channels > 2 ? src[ib + 2 * ihw] : 0f;
            bool ok = IsValid(a.Metric, a.Channels, v0, v1, v2);
            valid[e] = ok ? 1 : 0;
            int vb = b * a.Channels * ohw + o;
            float marker = a.Metric == 0 ? IgnoreIndex : 0f;
            values[vb] = !ok ? marker : a.Binarise != 0 ? (v0 > 0.5f ? 1f : 0f) : v0;
            if (a.Channels > 1)
            {
                values[vb + ohw] = !ok ? marker : a.Binarise != 0 ? (v1 > 0.5f ? 1f : 0f) : v1;
                values[vb + 2 * ohw] = !ok ? marker : a.Binarise != 0 ? (v2 > 0.5f ? 1f : 0f) : v2;
            }
        }
    }

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, Args> Prepare;

        public Kernels(Device d) =>
            Prepare = d.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, Args>(PrepareKernel);
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static Args Make(string op, long values, long valid, long src, int n, int channels, int inH, int inW, int outH, int outW,
                     CcrLabelMetric metric, bool binarise)
    {
        if (n < 1 || inH < 1 || inW < 1 || outH < 1 || outW < 1)
            throw new ArgumentException($"{op}: bad sizes N={n}, {inH}x{inW} -> {outH}x{outW}");
        int want = metric == CcrLabelMetric.Angle ? 3 : 1;
        if (channels != want) throw new ArgumentException($"{op}: metric {metric} needs {want} label channels, got {channels}");
        Launch.SameLength(op, src, (long)n * channels * inH * inW, "source labels and (N, L, H, W)");
        Launch.SameLength(op, values, (long)n * channels * outH * outW, "values and (N, L, h*w)");
        Launch.SameLength(op, valid, (long)n * outH * outW, "valid and (N, h*w)");
        if ((long)n * channels * Math.Max(inH * (long)inW, outH * (long)outW) > int.MaxValue)
            throw new ArgumentException($"{op}: labels too large ({n}x{channels}x{inH}x{inW})");
        return new Args
        {
            N = n, Channels = channels, InH = inH, InW = inW, OutH = outH, OutW = outW, Metric = (int)metric,
            Binarise = binarise ? 1 : 0, ScaleH = Resize.Scale(inH, outH), ScaleW = Resize.Scale(inW, outW),
        };
    }

    /// <summary>values (N, L, h*w) and valid (N, h*w) from float labels src (N, L, H, W).</summary>
    public static void Prepare(Device d, Buf<float> values, Buf<int> valid, Buf<float> src, int n, int channels,
                               int inH, int inW, int outH, int outW, CcrLabelMetric metric, bool binarise)
    {
        var a = Make("CcrLabels.Prepare", values.Length, valid.Length, src.Length, n, channels, inH, inW, outH, outW, metric, binarise);
        K(d).Prepare(d.Grid(valid.Length), values.View, valid.View, src.View, valid.View, a);
    }

    /// <summary>values (N, 1, h*w) and valid (N, h*w) from integer class labels src (N, H, W).</summary>
    public static void Prepare(Device d, Buf<float> values, Buf<int> valid, Buf<int> src, int n,
                               int inH, int inW, int outH, int outW, CcrLabelMetric metric, bool binarise)
    {
        var a = Make("CcrLabels.Prepare", values.Length, valid.Length, src.Length, n, 1, inH, inW, outH, outW, metric, binarise);
        a.IntSource = 1;
        K(d).Prepare(d.Grid(valid.Length), values.View, valid.View, values.View, src.View, a);
    }
}
