using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>The projector and the whole plug-in. The forward tests need conv2d, batch norm and L2
/// normalisation from the foundation ops, so they pass once those are merged.</summary>
public class CcrProjectorTests
{
    static readonly (string, int)[] Tasks = [("semseg", 6), ("depth", 6), ("normals", 6)];

    [Theory]
    [InlineData(ProjectorSharing.Unshared, 6)]
    [InlineData(ProjectorSharing.SourceShared, 3)]
    [InlineData(ProjectorSharing.TargetShared, 3)]
    [InlineData(ProjectorSharing.BothShared, 1)]
    public void SharingModesBuildTheRightProjectors(ProjectorSharing sharing, int count)
    {
        var ccr = new CcrLoss(Devices.Cpu, new Rng(1), new CcrConfig { Sharing = sharing, ProjectionDim = 4 }, Tasks);
        Assert.Equal(count, ccr.ProjectorCount);
        Assert.Equal(count * 6, ccr.Parameters().Count()); // 2 convs with bias + BN weight and bias
        bool same = ReferenceEquals(ccr.ProjectorFor("semseg", "depth"), ccr.ProjectorFor("semseg", "normals"));
        Assert.Equal(sharing is ProjectorSharing.SourceShared or ProjectorSharing.BothShared, same);
        ccr.DisposeTensors();
    }

    [Fact]
    public void TargetSharingRejectsUnequalChannels() =>
        Assert.Throws<ArgumentException>(() => new CcrLoss(Devices.Cpu, new Rng(1),
            new CcrConfig { Sharing = ProjectorSharing.TargetShared, ProjectionDim = 4 }, [("semseg", 6), ("depth", 5), ("normals", 6)]));

    [Fact]
    public void ProjectorOutputsUnitNormPixelsWithTorchNames()
    {
        var d = Devices.Cpu;
        var p = new Projector(d, new Rng(2), 6, 5);
        Assert.Equal(new[] { "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.3.weight", "net.3.bias" },
                     p.NamedParameters().Select(x => x.Name));
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, Rand.Floats(Rand.New(3), 2 * 6 * 3 * 4), 2, 6, 3, 4);
        var y = p.Forward(x).ToArray();
        Assert.Equal(2 * 5 * 12, y.Length);
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 12; i++)
            {
                double s = 0;
                for (int c = 0; c < 5; c++) s += (double)y[(b * 5 + c) * 12 + i] * y[(b * 5 + c) * 12 + i];
                Tol.Close(1.0, Math.Sqrt(s), 1e-5, 1e-5, $"norm of pixel {b},{i}");
            }
    }

    [Fact]
    public void CcrLossRunsEndToEndWithGradientsAndDiagnostics()
    {
        var d = Devices.Cpu;
        var cfg = new CcrConfig { TopK = 6, NumNegatives = 4, Gamma = 0.2f, RampEpochs = 2, CollectSamples = true, ProjectionDim = 8 };
        var ccr = new CcrLoss(d, new Rng(4), cfg, Tasks);
        var r = Rand.New(5);
        using var scope = new TensorScope();
        var features = Tasks.ToDictionary(t => t.Item1, t =>
        {
            var f = Tensor.FromArray(d, Rand.Floats(r, 2 * 6 * 6 * 7), 2, 6, 6, 7);
            f.RequiresGrad = true;
            return f;
        });
        var labels = new Dictionary<string, TaskLabels>
        {
            ["semseg"] = TaskLabels.Create(d, "semseg", Rand.Ints(r, 2 * 12 * 14, 3), 2, 12, 14),
            ["depth"] = TaskLabels.Create(d, "depth", Rand.Floats(r, 2 * 12 * 14, 0.5f, 4f), 2, 12, 14),
            ["normals"] = TaskLabels.Create(d, "normals", Rand.Floats(r, 2 * 3 * 12 * 14), 2, 12, 14),
        };
        var (loss, diag) = ccr.Forward(features, labels, epoch: 1);
        Assert.Equal(0.5f, diag.Lambda);
        Assert.Equal(3, diag.Pairs.Count);
        float v = loss.Item();
        Assert.True(v > 0f, $"loss {v}");
        loss.Backward();
        diag.Resolve();
        foreach (var p in diag.Pairs)
        {
            Assert.InRange(p.ValidAnchorFraction, 0.01f, 1f);
            Assert.True(p.MeanNegDist > p.MeanPosDist * 0.5f);
            Assert.Equal(p.Triplets, p.NegSamples!.Length);
        }
        Assert.Contains(features.Values, f => f.Grad != null && f.Grad.ToArray().Any(g => g != 0));
        Assert.Contains(ccr.Parameters(), p => p.Grad != null);
        foreach (var l in labels.Values) l.Dispose();
        ccr.DisposeTensors();
    }
}
