using Ccr.Kernels.Contrastive;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>Source labels prepared on the device for CCR: nearest downsampling against PyTorch's
/// F.interpolate (golden from tools/golden_ccr_nearest.py), validity and binarising against the
/// float64 reference, and the labels taken straight from the batch's device tensors.</summary>
public class CcrLabelTests
{
    [Fact]
    public void NearestDownsamplingPicksPyTorchsSourcePixels()
    {
        var d = Devices.Cpu;
        var f = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "ccr", "nearest.json"))).RootElement;
        int checkedCases = 0;
        foreach (var c in f.GetProperty("cases").EnumerateArray())
        {
            int ih = c.GetProperty("in_h").GetInt32(), iw = c.GetProperty("in_w").GetInt32();
            int oh = c.GetProperty("out_h").GetInt32(), ow = c.GetProperty("out_w").GetInt32();
            var rows = c.GetProperty("rows").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            var cols = c.GetProperty("cols").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            // depth labels whose value is 1 + the flat source index (exact in float32): the output names its source
            var src = Enumerable.Range(0, ih * iw).Select(i => (float)(i + 1)).ToArray();
            using var scope = new TensorScope();
            using var labels = TaskLabels.Create(d, "depth", src, 1, ih, iw);
            var got = labels.Resized(oh, ow).Values;
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++)
                {
                    int want = rows[y] * iw + cols[x] + 1;
                    if (got[y * ow + x] != want)
                        Assert.Fail($"{ih}x{iw} -> {oh}x{ow}: output ({y}, {x}) took source {got[y * ow + x] - 1}, PyTorch takes {want - 1}");
                }
            checkedCases++;
        }
        Assert.Equal(9, checkedCases);
    }

    [Theory]
    [InlineData(CcrLabelMetric.Discrete, false)]
    [InlineData(CcrLabelMetric.Discrete, true)]
    [InlineData(CcrLabelMetric.L1, false)]
    [InlineData(CcrLabelMetric.Angle, false)]
    public void PreparedLabelsMatchTheReference(CcrLabelMetric metric, bool binarise)
    {
        // 2 images of 13x17 -> 5x6 (downsampling) and -> 13x17 (identity): ignored markers, NaN, infinity, zero vectors
        var d = Devices.Cpu;
        var r = Rand.New(61 + (int)metric);
        int n = 2, l = metric == CcrLabelMetric.Angle ? 3 : 1, ih = 13, iw = 17;
        var src = new float[n * l * ih * iw];
        for (int i = 0; i < src.Length; i++)
        {
            float u = r.NextFloat();
            src[i] = u < 0.05f ? float.NaN : u < 0.08f ? float.PositiveInfinity
                   : metric == CcrLabelMetric.Discrete ? (u < 0.2f ? 255f : binarise ? r.NextFloat() : r.NextInt(4))
                   : metric == CcrLabelMetric.L1 ? (u < 0.2f ? 0f : r.Uniform(0.1f, 5f))
                   : (u < 0.2f ? 0f : (float)r.NextGaussian());
        }
        if (metric == CcrLabelMetric.Angle) // whole zero vectors, not just zero components
            for (int i = 0; i < ih * iw; i += 7) for (int c = 0; c < 3; c++) src[c * ih * iw + i] = 0f;
        foreach (var (oh, ow) in new[] { (5, 6), (13, 17) })
        {
            using var scope = new TensorScope();
            var tsrc = Tensor.FromArray(d, src, n, l, ih, iw);
            var values = Tensor.Empty(d, n, l, oh * ow);
            var valid = Tensor.Empty(d, DType.I32, n, oh * ow);
            CcrLabels.Prepare(d, values.Data, valid.IntData, tsrc.Data, n, l, ih, iw, oh, ow, metric, binarise);
            var (rv, rvalid) = CcrLabels.Reference.Prepare(Rand.D(src), n, l, ih, iw, oh, ow, metric, binarise);
            Assert.Equal(rvalid, valid.ToIntArray());
            Tol.Close(rv, values.ToArray(), 0, 0, $"{metric} values at {oh}x{ow}");
            Assert.Contains(rvalid, v => v == 0);
            Assert.Contains(rvalid, v => v == 1);
        }
    }

    [Fact]
    public void IntegerClassLabelsFromTheBatchAreUsedInPlace()
    {
        // semseg as the batch holds it: int32 (N, H, W) on the device; sal binarised from 0/1/255
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var sem = Tensor.FromArray(d, new[] { 3, 255, 1, 1, 0, 2, 255, 4 }, 1, 2, 4);
        using var labels = TaskLabels.FromDevice("semseg", sem);
        Assert.Equal(new[] { 3f, 255f, 1f, 1f, 0f, 2f, 255f, 4f }, labels.Values);
        Assert.Equal(new[] { 1, 0, 1, 1, 1, 1, 0, 1 }, labels.Valid);
        var small = labels.Resized(1, 2); // rows {0}, cols {0, 2}
        Assert.Equal(new[] { 3f, 1f }, small.Values);
        Assert.Same(small, labels.Resized(1, 2));
        var sal = Tensor.FromArray(d, new[] { 1, 0, 255, 1 }, 1, 2, 2);
        using var s = TaskLabels.FromDevice("sal", sal);
        Assert.Equal(new[] { 1f, 0f, 255f, 1f }, s.Values);
        Assert.Equal(new[] { 1, 1, 0, 1 }, s.Valid);
        Assert.Throws<ArgumentException>(() => TaskLabels.FromDevice("depth", sem)); // int labels of a continuous task
        Assert.Throws<ArgumentException>(() => TaskLabels.FromDevice("normals", Tensor.Empty(d, 1, 1, 2, 2)));
        Assert.False(sem.IsDisposed);
    }
}
