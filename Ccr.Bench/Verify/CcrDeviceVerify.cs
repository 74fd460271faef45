using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>The device-side pieces of a CCR step against their references: the range-guided radix
/// select on key distributions that break digit schedules (selected sets compared exactly), the
/// counter-based anchor sampler (anchors compared exactly), and the label preparation (nearest by
/// PyTorch's rule, validity, binarising; compared exactly).</summary>
public sealed class CcrDeviceVerify : IVerifySuite
{
    public string Family => "ccr";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        foreach (var (hw, k) in small ? new[] { (300, 11), (300, 149) } : new[] { (300, 1), (300, 149), (300, 299), (19200, 16), (19200, 128) })
            yield return new VerifyCase("ccr.select.radix", $"7 rows x {hw} k{k}", 0, 0, d => Radix(d, hw, k));
        foreach (var (n, h, w, a) in small ? new[] { (3, 11, 13, 9) } : new[] { (3, 11, 13, 9), (4, 120, 160, 192), (2, 60, 80, 960) })
            yield return new VerifyCase("ccr.anchors.device", $"N{n} {h}x{w} A{a}", 0, 0, d => Anchors(d, n, h, w, a));
        var sizes = small ? new[] { (2, 13, 17, 5, 6) } : new[] { (2, 13, 17, 5, 6), (4, 480, 640, 120, 160), (4, 560, 336, 120, 160) };
        foreach (var (n, ih, iw, oh, ow) in sizes)
            foreach (var (task, metric, bin) in new[] { ("semseg", CcrLabelMetric.Discrete, false), ("sal", CcrLabelMetric.Discrete, true),
                                                        ("depth", CcrLabelMetric.L1, false), ("normals", CcrLabelMetric.Angle, false) })
                yield return new VerifyCase("ccr.labels.nearest", $"{task} N{n} {ih}x{iw}->{oh}x{ow}", 0, 0,
                                            d => Labels(d, n, ih, iw, oh, ow, metric, bin));
    }

    // rows: unit-norm distances in [0, 2]; one value; 1.0 and its next ulps; signed zeros and negatives;
    // 60 decades; NaN holes; 11 eligible keys only. Output: per pixel 1 if positive, 2 if negative, else 0.
    static (double[], float[]) Radix(Device d, int hw, int k)
    {
        var r = new Rng((ulong)(hw + k));
        Func<int, float>[] kinds =
        [
            _ => MathF.Sqrt(2 - 2 * r.Uniform(-1, 1)),
            _ => 0.75f,
            _ => BitConverter.Int32BitsToSingle(0x3F800000 + r.NextInt(5)),
            i => i % 3 == 0 ? -0f : i % 3 == 1 ? 0f : -r.NextFloat(),
            _ => MathF.Pow(10, r.Uniform(-30, 30)),
            i => i % 4 == 0 ? float.NaN : r.Uniform(0, 3),
            i => i < 12 ? r.Uniform(0, 1) : float.NaN,
        ];
        int rows = kinds.Length;
        var ld = new float[rows * hw];
        for (int row = 0; row < rows; row++) for (int i = 0; i < hw; i++) ld[row * hw + i] = kinds[row](i);
        var anchors = new int[rows];
        using var scope = new TensorScope();
        var tl = Tensor.FromArray(d, ld, rows, hw);
        var ta = Tensor.FromArray(d, anchors, rows);
        using var block = d.Pool.Rent(16L * rows);
        var bounds = new Buf<ulong>(block, 0, 2L * rows);
        CcrSelect.LabelTopKBounds(d, bounds, tl.Data, ta.IntData, rows, hw, k);
        var b = bounds.ToArray();
        var (pos, neg) = CcrSelect.Reference.Sets(VerifyData.D(ld), anchors, rows, hw, k, CcrLabelMetric.L1);
        var exp = new double[rows * hw];
        var got = new float[rows * hw];
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < hw; i++)
            {
                int e = row * hw + i;
                exp[e] = pos[e] ? 1 : neg[e] ? 2 : 0;
                got[e] = CcrSelect.IsPositive(1, i, 0, ld[e], b[2 * row]) ? 1 : CcrSelect.IsNegative(1, i, 0, ld[e], b[2 * row], b[2 * row + 1]) ? 2 : 0;
            }
        return (exp, got);
    }

    // image 0 mostly valid, image 1 with fewer valid pixels than anchors, the rest 90% valid
    static (double[], float[]) Anchors(Device d, int n, int h, int w, int perImage)
    {
        int hw = h * w;
        var r = new Rng((ulong)(hw + perImage));
        var valid = new int[n * hw];
        for (int i = 0; i < valid.Length; i++) valid[i] = i / hw == 1 ? (i % 97 == 0 && (i % hw) / 97 < perImage / 2 ? 1 : 0) : r.NextFloat() < 0.9f ? 1 : 0;
        const ulong seed = 0xC0FFEE; const int counter = 1234567;
        using var scope = new TensorScope();
        var tv = Tensor.FromArray(d, valid, n, hw);
        var tc = Tensor.FromArray(d, new[] { counter }, 1);
        var ta = Tensor.Empty(d, DType.I32, n, perImage);
        CcrAnchors.SampleAnchors(d, ta.IntData, tv.IntData, tc.IntData, seed, n, hw, perImage);
        var exp = CcrAnchors.Reference.Sample(valid, n, hw, perImage, seed, counter);
        return (Array.ConvertAll(exp, v => (double)v), Array.ConvertAll(ta.ToIntArray(), v => (float)v));
    }

    static (double[], float[]) Labels(Device d, int n, int ih, int iw, int oh, int ow, CcrLabelMetric metric, bool binarise)
    {
        int l = metric == CcrLabelMetric.Angle ? 3 : 1;
        var r = new Rng((ulong)(ih * iw + (int)metric));
        var src = new float[n * l * ih * iw];
        for (int i = 0; i < src.Length; i++)
        {
            float u = r.NextFloat();
            src[i] = u < 0.03f ? float.NaN : metric == CcrLabelMetric.Discrete ? (u < 0.15f ? 255f : binarise ? r.NextFloat() : r.NextInt(40))
                   : metric == CcrLabelMetric.L1 ? (u < 0.15f ? 0f : r.Uniform(0.5f, 10f)) : (u < 0.1f ? 0f : (float)r.NextGaussian());
        }
        using var scope = new TensorScope();
        var values = Tensor.Empty(d, n, l, oh * ow);
        var valid = Tensor.Empty(d, DType.I32, n, oh * ow);
        if (metric == CcrLabelMetric.Discrete && !binarise) // class labels as the batch holds them: int32 (N, H, W)
        {
            var ints = Array.ConvertAll(src, v => float.IsNaN(v) ? 255 : (int)v);
            for (int i = 0; i < src.Length; i++) src[i] = ints[i];
            CcrLabels.Prepare(d, values.Data, valid.IntData, Tensor.FromArray(d, ints, n, ih, iw).IntData, n, ih, iw, oh, ow, metric, binarise);
        }
        else CcrLabels.Prepare(d, values.Data, valid.IntData, Tensor.FromArray(d, src, n, l, ih, iw).Data, n, l, ih, iw, oh, ow, metric, binarise);
        var (rv, rvalid) = CcrLabels.Reference.Prepare(VerifyData.D(src), n, l, ih, iw, oh, ow, metric, binarise);
        return (rv.Concat(rvalid.Select(v => (double)v)).ToArray(), values.ToArray().Concat(valid.ToIntArray().Select(v => (float)v)).ToArray());
    }
}
