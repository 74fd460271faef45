using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

public class AugmentLoaderTests
{
    private static Sample Small() => SynthRoomsRenderer.Render(5, 2, 24, 32);

    [Fact]
    public void FlipMirrorsAndNegatesNormalX()
    {
        var s = Small();
        var f = Augment.FlipHorizontal(s);
        int n = s.Pixels, y = 7, x = 3, i = y * 32 + x, j = y * 32 + (31 - x);
        Assert.Equal(s.Semseg![i], f.Semseg![j]);
        Assert.Equal(s.Depth![i], f.Depth![j]);
        Assert.Equal(-s.Normals![i], f.Normals![j]);
        Assert.Equal(s.Normals[n + i], f.Normals[n + j]);
        Assert.Equal(s.Image[2 * n + i], f.Image[2 * n + j]);
        var back = Augment.FlipHorizontal(f);
        Assert.Equal(s.Normals, back.Normals);
        Assert.Equal(s.Parts, back.Parts);
    }

    [Fact]
    public void ScaleDividesDepthAndKeepsLabelsNearest()
    {
        var s = Small();
        var up = Augment.Scale(s, 2.0);
        Assert.Equal((48, 64), (up.Height, up.Width));
        Assert.Equal(s.Depth![5 * 32 + 9] / 2f, up.Depth![10 * 64 + 18]);
        Assert.Equal(s.Semseg![5 * 32 + 9], up.Semseg![11 * 64 + 19]);
        Assert.All(up.Semseg, v => Assert.Contains(v, s.Semseg)); // nearest never invents classes
        var down = Augment.Scale(s, 0.5);
        Assert.Equal((12, 16), (down.Height, down.Width));
        Assert.Equal(s.Depth[2 * 32 + 2] * 2f, down.Depth![1 * 16 + 1]);
    }

    [Fact]
    public void CropPadsWithIgnoreAndInvalid()
    {
        var s = Small();
        var c = Augment.Crop(s, 0, 0, 30, 40); // larger than 24x32: bottom and right padded
        Assert.Equal(s.Semseg![0], c.Semseg![0]);
        Assert.Equal(255, c.Semseg[29 * 40 + 39]);
        Assert.Equal(255, c.Saliency![25 * 40]);
        Assert.Equal(255f, c.Edge![5 * 40 + 35]);
        Assert.Equal(0f, c.Depth![5 * 40 + 35]);
        Assert.Equal(0f, c.Normals![30 * 40 + 5 * 40 + 35]);
        Assert.Equal(0f, c.Image[5 * 40 + 35]);
    }

    [Fact]
    public void PhotometricStaysInRangeAndIsDeterministic()
    {
        var a = Small().Image;
        var b = (float[])a.Clone();
        var r1 = new KeyedRng(9);
        var r2 = new KeyedRng(9);
        Augment.Photometric(a, 24, 32, ref r1);
        Augment.Photometric(b, 24, 32, ref r2);
        Assert.Equal(a, b);
        Assert.All(a, v => Assert.InRange(v, 0f, 1f));
    }

    private static DataLoader Loader(int workers, ulong seed = 1) => new(
        new SynthRoomsDataset("train", 10, 24, 32, seed: 0),
        new DataLoaderOptions
        {
            BatchSize = 3, Seed = seed, Workers = workers, Prefetch = 2,
            Augment = new AugmentOptions { CropHeight = 20, CropWidth = 28 },
        });

    [Fact]
    public void BatchesArePureFunctionsOfSeedEpochAndIndex()
    {
        var a = Loader(2).Epoch(3).ToList();
        var b = Loader(1).Epoch(3).ToList();
        Assert.Equal(3, a.Count); // drop last: 10 / 3
        for (int k = 0; k < a.Count; k++)
        {
            Assert.Equal(a[k].Indices, b[k].Indices);
            Assert.Equal(a[k].Images, b[k].Images);
            Assert.Equal(a[k].Normals, b[k].Normals);
            Assert.Equal(a[k].Semseg, b[k].Semseg);
        }
        // Resuming at batch 2 gives the same batch as the uninterrupted epoch.
        var resumed = Loader(2).Epoch(3, startBatch: 2).Single();
        Assert.Equal(a[2].Images, resumed.Images);
        Assert.Equal(a[2].Depth, resumed.Depth);
        Assert.Equal((3, 20, 28), (a[0].N, a[0].Height, a[0].Width));
        Assert.Equal(3 * 3 * 20 * 28, a[0].Images.Length);
        Assert.NotEqual(Loader(1).Order(3), Loader(1).Order(4));
        Assert.NotEqual(a[0].Images, Loader(1, seed: 2).MakeBatch(3, 0).Images);
    }

    [Fact]
    public void EvaluationBatchesPadMixedSizes()
    {
        var small = Small();
        var big = SynthRoomsRenderer.Render(5, 3, 30, 40);
        var b = Batch.Stack([small, big], [0, 1]);
        Assert.Equal((2, 30, 40), (b.N, b.Height, b.Width));
        Assert.Equal([24, 30], b.Heights);
        Assert.Equal(255, b.Semseg![29 * 40 + 39]);          // padding of the first sample
        Assert.Equal(small.Semseg![0], b.Semseg[0]);
        TestData.Close((small.Image[0] - 0.485) / 0.229, b.Images[0], 1e-6);
        Assert.Equal(small.Semseg, b.Slice(b.Semseg, 0, 1));
        Assert.Equal(big.Normals, b.Slice(b.Normals!, 1, 3));
    }
}
