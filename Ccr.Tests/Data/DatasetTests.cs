using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

public class DatasetTests
{
    private static string Nyud => TestData.DataFixture("nyud");
    private static string Pascal => TestData.DataFixture("pascal");

    [Fact]
    public void NyudLoadsEveryTaskWithReferenceConventions()
    {
        var ds = new NyudDataset(Nyud, "val");
        Assert.Equal(3, ds.Count);
        Assert.Equal(2, new NyudDataset(Nyud, "train").Count);
        var s = ds.Get(0);
        Assert.Equal(("0001", 24, 32), (s.Id, s.Height, s.Width));
        // Semseg: raw 0 -> 255, else raw - 1.
        var raw = ImageIo.LoadLabel(Path.Combine(Nyud, "segmentation", "0001.png"), out _, out _);
        for (int i = 0; i < raw.Length; i++) Assert.Equal(raw[i] == 0 ? 255 : raw[i] - 1, s.Semseg![i]);
        Assert.Equal(Npy.Read(Path.Combine(Nyud, "depth", "0001.npy")).ToFloat(), s.Depth);
        Assert.All(s.Depth!.Take(64), d => Assert.Equal(0f, d)); // first two rows invalid
        // Normals (H, W, 3) on disk -> (3, H, W); pixel (0, 0) is invalid (zero).
        var n = Npy.Read(Path.Combine(Nyud, "normals", "0001.npy"));
        int p = 5 * 32 + 7, hw = 24 * 32;
        for (int c = 0; c < 3; c++) Assert.Equal((float)n.Data[3 * p + c], s.Normals![c * hw + p]);
        Assert.Equal(0f, s.Normals![0]);
        Assert.All(s.Edge!, e => Assert.True(e is 0f or 1f));
        Assert.All(s.Image, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void PascalLoadsPartsSaliencyNormalsAndEdges()
    {
        var ds = new PascalDataset(Pascal, "val");
        Assert.Equal(2, ds.Count);
        var s = ds.Get(0);
        Assert.Equal(TestData.ReadInts(TestData.Fixture("data", "parts_2008_000001.npy")), s.Parts);
        Assert.All(ds.Get(1).Parts!, v => Assert.Equal(255, v)); // no parts file: unannotated
        Assert.All(s.Semseg!.Skip(23 * 32), v => Assert.Equal(255, v));
        var sal = ImageIo.LoadLabel(Path.Combine(Pascal, "sal_distill", "2008_000001.png"), out _, out _);
        for (int i = 0; i < sal.Length; i++) Assert.Equal(sal[i] / 255f > 0.5f ? 1 : 0, s.Saliency![i]);
        int hw = 24 * 32, q = 3 * 32 + 4;
        Assert.Equal((0f, 0f, 0f), (s.Normals![q], s.Normals[hw + q], s.Normals[2 * hw + q]));
        // Edges lie on LabelMap boundaries and every boundary is near an edge.
        var lm = TestData.ReadInts(TestData.Fixture("data", "labelmap_2008_000001.npy"));
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 32; x++)
            {
                if (s.Edge![y * 32 + x] == 0) continue;
                bool boundary = false;
                foreach (var (dy, dx) in new[] { (0, 1), (1, 0), (0, -1), (-1, 0) })
                {
                    int yy = y + dy, xx = x + dx;
                    if (yy >= 0 && yy < 24 && xx >= 0 && xx < 32 && lm[yy * 32 + xx] != lm[y * 32 + x]) boundary = true;
                }
                Assert.True(boundary, $"edge at ({x},{y}) is not on a label boundary");
            }
        Assert.Equal(1f, s.Edge![2 * 32 + 9] + s.Edge[2 * 32 + 10]); // the x = 9|10 boundary, thinned to one pixel
    }

    [Fact]
    public void MissingLabelFileNamesPathAndIdOrIsSkipped()
    {
        string root = TestData.CopyFixture("nyud");
        string missing = Path.Combine(root, "depth", "0002.npy");
        File.Delete(missing);
        var e = Assert.Throws<DataFileException>(() => new NyudDataset(root, "val"));
        Assert.Contains(missing, e.Message);
        Assert.Contains("'0002'", e.Message);
        var skip = new NyudDataset(root, "val", policy: BadSamplePolicy.Skip);
        Assert.Equal(2, skip.Count);
        Assert.Single(skip.Skipped);
        Assert.Equal(3, new NyudDataset(root, "val", [TaskNames.Semseg]).Count); // depth not requested
    }

    [Fact]
    public void SplitNamingUnknownIdIsReported()
    {
        string root = TestData.CopyFixture("nyud");
        string split = Path.Combine(root, "gt_sets", "val.txt");
        File.AppendAllText(split, "9999\n");
        var e = Assert.Throws<DataFileException>(() => new NyudDataset(root, "val"));
        Assert.Contains(Path.Combine(root, "images", "9999.jpg"), e.Message);
        Assert.Contains("'9999'", e.Message);
        Assert.Contains(split, e.Message);
        var missingSplit = Assert.Throws<DataFileException>(() => new NyudDataset(root, "test"));
        Assert.Contains(Path.Combine(root, "gt_sets", "test.txt"), missingSplit.Message);
    }

    [Fact]
    public void CorruptImageAndWrongShapeStopOrAreSkippedByTheLoader()
    {
        string root = TestData.CopyFixture("nyud");
        string img = Path.Combine(root, "images", "0002.jpg");
        File.WriteAllBytes(img, [1, 2, 3, 4, 5]);
        string depth = Path.Combine(root, "depth", "0003.npy");
        Npy.WriteFloat32(depth, new float[24 * 31], 24, 31);
        var ds = new NyudDataset(root, "val");
        var e1 = Assert.Throws<DataFileException>(() => ds.Get(1));
        Assert.Contains(img, e1.Message);
        var e2 = Assert.Throws<DataFileException>(() => ds.Get(2));
        Assert.Contains(depth, e2.Message);
        Assert.Contains("wrong shape (24, 31)", e2.Message);

        var stop = new DataLoader(ds, new DataLoaderOptions { BatchSize = 3, Shuffle = false, DropLast = false });
        Assert.Contains(img, Assert.Throws<DataFileException>(() => stop.Epoch(0).ToList()).Message);
        var skip = new DataLoader(ds, new DataLoaderOptions { BatchSize = 3, Shuffle = false, DropLast = false, Policy = BadSamplePolicy.Skip });
        var batch = Assert.Single(skip.Epoch(0));
        Assert.Equal(["0001", "0001", "0001"], batch.Ids); // 0002 and 0003 replaced by the next good sample
        Assert.Equal(2, skip.SkippedSamples);
    }

    [Fact]
    public void LabelOfWrongSizeIsReported()
    {
        string root = TestData.CopyFixture("pascal");
        string sem = Path.Combine(root, "semseg", "pascal-context", "2008_000002.png");
        ImageIo.SaveGray(sem, new byte[10 * 10], 10, 10);
        var e = Assert.Throws<DataFileException>(() => new PascalDataset(root, "val", [TaskNames.Semseg]).Get(1));
        Assert.Contains(sem, e.Message);
        Assert.Contains("10x10", e.Message);
    }
}
