using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>The anchor count rule (gamma with a floor, ccr.min_anchors) and that the regulariser
/// samples what it says.</summary>
public class AnchorFloorTests
{
    [Theory]
    // h, w, gamma, floor, expected: max(1, floor(gamma h w), min(floor, h w))
    [InlineData(120, 160, 0.01f, 0, 192)]    // the paper: 480x640 images, stride-4 maps
    [InlineData(12, 16, 0.01f, 0, 1)]        // the 48x64 demo without a floor: one anchor
    [InlineData(12, 16, 0.01f, 64, 64)]
    [InlineData(12, 16, 0.01f, 500, 192)]    // a floor above the map takes every pixel, no more
    [InlineData(120, 160, 0.01f, 64, 192)]   // the floor never lowers gamma's count
    [InlineData(24, 32, 0.01f, 192, 192)]
    [InlineData(6, 7, 0.01f, 0, 1)]
    [InlineData(7, 5, 0.5f, 3, 17)]
    public void AnchorsPerImageIsGammaWithAFloor(int h, int w, float gamma, int floor, int expected) =>
        Assert.Equal(expected, new CcrConfig { Gamma = gamma, MinAnchors = floor }.AnchorsPerImage(h, w));

    [Fact]
    public void NegativeFloorIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new CcrConfig { MinAnchors = -1 }.Validate());
        Assert.Contains("ccr.min_anchors", e.Message);
    }

    [Fact]
    public void RegulariserSamplesTheFloorOfAnchorsPerImage()
    {
        var d = Devices.Cpu;
        (string, int)[] tasks = [("semseg", 6), ("depth", 6)];
        var r = Rand.New(9);
        foreach (int floor in new[] { 0, 10, 1000 })
        {
            var cfg = new CcrConfig { TopK = 4, NumNegatives = 4, Gamma = 0.01f, MinAnchors = floor, ProjectionDim = 4, Pairs = PairSelection.AllPairs };
            var ccr = new CcrLoss(d, new Rng(4), cfg, tasks);
            using var scope = new TensorScope();
            var features = tasks.ToDictionary(t => t.Item1, t => Tensor.FromArray(d, Rand.Floats(r, 2 * 6 * 5 * 6), 2, 6, 5, 6));
            var labels = new Dictionary<string, TaskLabels>
            {
                ["semseg"] = TaskLabels.Create(d, "semseg", Rand.Ints(r, 2 * 5 * 6, 3), 2, 5, 6),
                ["depth"] = TaskLabels.Create(d, "depth", Rand.Floats(r, 2 * 5 * 6, 0.5f, 4f), 2, 5, 6),
            };
            var (_, diag) = ccr.Forward(features, labels, epoch: 1);
            diag.Resolve();
            int perImage = floor switch { 0 => 1, 10 => 10, _ => 30 }; // 5x6 map: gamma gives 0 -> 1; 1000 -> all 30 pixels
            Assert.Equal(2, diag.Pairs.Count);
            Assert.All(diag.Pairs, p => Assert.Equal(2 * perImage, p.AnchorsSampled));
            foreach (var l in labels.Values) l.Dispose();
            ccr.DisposeTensors();
        }
    }
}
