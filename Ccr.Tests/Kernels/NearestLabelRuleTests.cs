using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// One nearest-neighbour rule for label maps, PyTorch's interpolate(mode='nearest'): the source
/// rows and columns of tools/golden_nearest_labels.py (torch), at 560x336 -&gt; 120x160 (where exact
/// integer floor(dst * in / out) picks other pixels), PASCAL sizes and awkward factors. Both the
/// device op (<see cref="F.ResizeNearestLabels"/>) and the CCR labels' host copy
/// (<see cref="TaskLabels.Resized"/>) must pick them.
/// </summary>
public class NearestLabelRuleTests
{
    public sealed record Case(int InH, int InW, int OutH, int OutW, int[] Rows, int[] Cols);

    static List<Case> Cases()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "norm", "nearest_label_tables.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c =>
        {
            int[] A(string k) => c.GetProperty(k).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var i = A("in"); var o = A("out");
            return new Case(i[0], i[1], o[0], o[1], A("rows"), A("cols"));
        }).ToList();
    }

    public static TheoryData<int> CaseIndices()
    {
        var t = new TheoryData<int>();
        for (int i = 0; i < Cases().Count; i++) t.Add(i);
        return t;
    }

    /// <summary>The flat source index of every output pixel, as torch picked it.</summary>
    static int[] Expected(Case c)
    {
        var r = new int[c.OutH * c.OutW];
        for (int y = 0; y < c.OutH; y++)
            for (int x = 0; x < c.OutW; x++) r[y * c.OutW + x] = c.Rows[y] * c.InW + c.Cols[x];
        return r;
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void DeviceLabelResizeMatchesTorch(int index)
    {
        var c = Cases()[index];
        using var scope = new TensorScope();
        var idx = Enumerable.Range(0, c.InH * c.InW).ToArray();
        var got = F.ResizeNearestLabels(Tensor.FromArray(Devices.Cpu, idx, 1, c.InH, c.InW), c.OutH, c.OutW).ToIntArray();
        Assert.Equal(Expected(c), got);
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void CcrTaskLabelsResizeMatchesTorch(int index)
    {
        var c = Cases()[index];
        // Class ids up to 2^24 are exact in float; keep them below 255 (the ignore marker) by
        // resizing the row and the column index maps separately.
        var rowIdx = new float[c.InH * c.InW];
        var colIdx = new float[c.InH * c.InW];
        for (int y = 0; y < c.InH; y++)
            for (int x = 0; x < c.InW; x++) { rowIdx[y * c.InW + x] = y % 200; colIdx[y * c.InW + x] = x % 200; }
        using var rows = TaskLabels.Create(Devices.Cpu, "semseg", rowIdx, 1, c.InH, c.InW);
        using var cols = TaskLabels.Create(Devices.Cpu, "semseg", colIdx, 1, c.InH, c.InW);
        var r = rows.Resized(c.OutH, c.OutW).Values;
        var k = cols.Resized(c.OutH, c.OutW).Values;
        for (int y = 0; y < c.OutH; y++)
            for (int x = 0; x < c.OutW; x++)
            {
                int i = y * c.OutW + x;
                Assert.True(r[i] == c.Rows[y] % 200 && k[i] == c.Cols[x] % 200,
                    $"{c.InH}x{c.InW} -> {c.OutH}x{c.OutW}: output ({y},{x}) took row {r[i]} col {k[i]}, torch row {c.Rows[y]} col {c.Cols[x]}");
            }
    }

    [Fact]
    public void TheIssueCaseIsOneWhereTheIntegerRuleDiffers()
    {
        // Guards the fixture: at 560x336 -> 120x160 exact integer arithmetic is not torch's rule.
        var c = Cases().First(c => c.InH == 560 && c.InW == 336);
        int differ = 0;
        for (int y = 0; y < c.OutH; y++) if ((int)((long)y * c.InH / c.OutH) != c.Rows[y]) differ++;
        for (int x = 0; x < c.OutW; x++) if ((int)((long)x * c.InW / c.OutW) != c.Cols[x]) differ++;
        Assert.True(differ > 0);
        Assert.Equal(c.Rows, Enumerable.Range(0, c.OutH).Select(y => Resize.NearestSrc(y, c.InH, c.OutH, Resize.Scale(c.InH, c.OutH))));
    }
}
