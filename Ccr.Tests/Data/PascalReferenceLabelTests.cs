using System.Text.Json;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

/// <summary>
/// PASCAL-Context labels equal to the reference loaders' (MTL's data/pascal_context.py + AddIgnoreRegions,
/// which ATRC's agrees with) on data/fixtures/pascal-mix: persons with and without parts, no person,
/// no object; normals on valid and invalid LabelMap classes; edges. Goldens by
/// tools/golden_pascal_labels.py (Ccr.Tests/Fixtures/pascal/mix_expected.*).
/// </summary>
public class PascalReferenceLabelTests
{
    public static string Root => TestData.DataFixture("pascal-mix");

    public static JsonElement Expected() =>
        JsonDocument.Parse(File.ReadAllText(TestData.Fixture("pascal", "mix_expected.json"))).RootElement;

    static readonly Lazy<Dictionary<string, MatArray>> Arrays =
        new(() => MatFile.Read(TestData.Fixture("pascal", "mix_expected.mat")));

    [Fact]
    public void HumanPartsOfImagesWithoutPartsAreIgnoredAsTheReferenceDoes()
    {
        var ds = new PascalDataset(Root, "val", [TaskNames.HumanParts]);
        var annotated = Expected().GetProperty("parts_annotated").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        Assert.Equal(2, annotated.Count);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            var want = ((MatNumeric)Arrays.Value["parts_" + s.Id]).ToRowMajorInt(out _, out _);
            Assert.Equal(want, s.Parts);
            Assert.Equal(annotated.Contains(s.Id), s.Parts!.Any(v => v != Sample.Ignore));
        }
    }

    [Fact]
    public void NormalsAreMaskedByTheValidLabelMapClasses()
    {
        var ex = Expected();
        var classes = ex.GetProperty("normals_valid_classes").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(classes, PascalLabels.NormalsValidClasses.Keys.Order());
        var ds = new PascalDataset(Root, "val", [TaskNames.Normals]);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            var want = (MatNumeric)Arrays.Value["normals_" + s.Id];  // (H, W, 3), column-major in the file
            Assert.Equal(new[] { s.Height, s.Width, 3 }, want.Dims);
            int n = s.Pixels, differ = 0;
            for (int y = 0; y < s.Height; y++)
                for (int x = 0; x < s.Width; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        double w = want.Data[c * n + x * s.Height + y];
                        if ((float)w != s.Normals![c * n + y * s.Width + x]) differ++;
                    }
            Assert.True(differ == 0, $"{s.Id}: {differ} normal components differ from the reference");
            // the (0, 0, 0) PNG pixels on a valid class are (-1, -1, -1), not "no normal"
            Assert.Equal(-1f, s.Normals![2 * s.Width + 2]);
        }
    }

    [Fact]
    public void EdgesEqualTheReference()
    {
        var ds = new PascalDataset(Root, "val", [TaskNames.Edge]);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            var want = ((MatNumeric)Arrays.Value["edge_" + s.Id]).ToRowMajorInt(out _, out _);
            Assert.Equal(want, s.Edge!.Select(v => (int)v).ToArray());
        }
    }

    [Fact]
    public void TheNormalsTaskNeedsTheLabelMap()
    {
        string root = TestData.CopyFixture("pascal-mix");
        string lm = Path.Combine(root, "pascal-context", "trainval", "2008_000012.mat");
        File.Delete(lm);
        var e = Assert.Throws<DataFileException>(() => new PascalDataset(root, "val", [TaskNames.Normals]));
        Assert.Contains(lm, e.Message);
        Assert.Equal(5, new PascalDataset(root, "val", [TaskNames.Saliency]).Count);
    }

    [Fact]
    public void ACropWithoutPartPixelsIsIgnoredInTraining()
    {
        var ds = new PascalDataset(Root, "val", [TaskNames.HumanParts]);
        var s = ds.Get(0);  // 2008_000010: parts on the left, none in the bottom-right corner
        Assert.Equal(0, s.Parts![29 * 40 + 39]);
        var corner = Augment.Crop(s, 26, 34, 4, 6);
        PascalLabels.IgnoreUnannotatedParts(corner.Parts);
        Assert.All(corner.Parts!, v => Assert.Equal(Sample.Ignore, v));
        var crops = Enumerable.Range(0, 40).Select(k =>
        {
            var r = KeyedRng.From(7, (ulong)k);
            return Augment.Apply(s, new AugmentOptions { CropHeight = 6, CropWidth = 6, Photometric = false }, ref r).Parts!;
        }).ToList();
        // every crop either shows a part pixel or is ignored entirely
        Assert.All(crops, p => Assert.True(p.Any(v => v is > 0 and < 255) || p.All(v => v == Sample.Ignore)));
        Assert.Contains(crops, p => p.All(v => v == Sample.Ignore));
    }
}
