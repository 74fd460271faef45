using System.Text.Json;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

/// <summary>
/// PASCAL-Context edge labels bit-equal to the reference loaders' (cv2.Laplacian, then
/// scikit-image 0.19.3's morphology.thin), on goldens of tools/golden_pascal_edges.py: realistic
/// 375x500 and 500x375 label maps, small random maps, and thinning alone on random binary images.
/// </summary>
public class PascalEdgeGoldenTests
{
    static string Fixture(string name) => TestData.Fixture("pascal", name);

    static (int[] Values, int H, int W) Var(Dictionary<string, MatArray> vars, string name)
    {
        var v = (MatNumeric)vars[name];
        var r = v.ToRowMajorInt(out int h, out int w);
        return (r, h, w);
    }

    static void AssertSame(int[] expected, float[] got, int h, int w, string what)
    {
        int differ = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != (int)got[i]) { differ++; if (first < 0) first = i; }
        Assert.True(differ == 0,
            $"{what} ({h}x{w}): {differ} of {expected.Length} pixels differ from skimage, first at (y {first / w}, x {first % w})");
    }

    [Fact]
    public void ThinTablesAreScikitImages()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("thin_luts.json")));
        bool[] Read(string k) => doc.RootElement.GetProperty(k).EnumerateArray().Select(e => e.GetInt32() != 0).ToArray();
        Assert.Equal(Read("G123"), ThinTables.G123);
        Assert.Equal(Read("G123P"), ThinTables.G123P);
    }

    [Theory]
    [InlineData("edges_375x500_a.mat")]
    [InlineData("edges_375x500_b.mat")]
    [InlineData("edges_500x375.mat")]
    public void RealisticLabelMapsGiveTheReferenceEdgesBitForBit(string file)
    {
        var vars = MatFile.Read(Fixture(file));
        var (lm, h, w) = Var(vars, "LabelMap");
        var (edge, eh, ew) = Var(vars, "edge");
        Assert.Equal((h, w), (eh, ew));
        Assert.True(edge.Sum() > 1000, "the golden has edges");
        AssertSame(edge, LabelOps.EdgeFromLabelMap(lm, h, w), h, w, file);
    }

    [Fact]
    public void SmallRandomLabelMapsGiveTheReferenceEdges()
    {
        var vars = MatFile.Read(Fixture("edges_small.mat"));
        int cases = 0;
        foreach (string name in vars.Keys.Where(k => k.StartsWith("lm_")).Order())
        {
            var (lm, h, w) = Var(vars, name);
            var (edge, _, _) = Var(vars, "edge_" + name[3..]);
            AssertSame(edge, LabelOps.EdgeFromLabelMap(lm, h, w), h, w, name);
            cases++;
        }
        Assert.Equal(24, cases);
    }

    [Fact]
    public void ThinningOfBinaryImagesIsScikitImages()
    {
        var vars = MatFile.Read(Fixture("edges_thin_binary.mat"));
        int cases = 0;
        foreach (string name in vars.Keys.Where(k => k.StartsWith("bin_")).Order())
        {
            var (b, h, w) = Var(vars, name);
            var (expected, _, _) = Var(vars, "thin_" + name[4..]);
            var m = b.Select(v => v != 0).ToArray();
            LabelOps.Thin(m, h, w);
            AssertSame(expected, m.Select(v => v ? 1f : 0f).ToArray(), h, w, name);
            cases++;
        }
        Assert.Equal(7, cases);
    }
}
