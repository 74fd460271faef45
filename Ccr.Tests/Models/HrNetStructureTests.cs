using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Tests.Common;
using Ccr.Train.Commands;
using Ccr.Training.MultiTask;
using Xunit;

namespace Ccr.Tests.Models;

/// <summary>Structure of the model zoo: names, shapes and counts against timm's own lists, and the
/// shape-only pass. Nothing here runs a forward pass.</summary>
public sealed class W18Fixture : IDisposable
{
    // building W18 costs ~1-2 s here (thousands of small host-device copies): build it once per class
    public HrNet Net { get; } = new(Devices.Cpu, new Rng(1), HrNetConfig.W18SmallV2);
    public void Dispose() => Net.DisposeTensors();
}

public class HrNetStructureTests(W18Fixture w18) : IClassFixture<W18Fixture>
{
    static readonly string[] HeadPrefixes = ["incre_modules.", "downsamp_modules.", "final_layer.", "classifier."];

    /// <summary>timm's state dict of the feature model: the classifier model's list minus its head.</summary>
    internal static List<(string Name, long[] Shape)> TimmFeatureStateDict()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", "hrnet_w18_small_v2_state_dict.txt");
        var list = new List<(string, long[])>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var f = line.Split('\t');
            if (HeadPrefixes.Any(p => f[0].StartsWith(p, StringComparison.Ordinal))) continue;
            var shape = f[1].Trim('(', ')').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                            .Select(long.Parse).ToArray();
            list.Add((f[0], shape));
        }
        return list;
    }

    [Fact]
    public void W18SmallV2MatchesTimmNamesShapesAndOrder()
    {
        var net = w18.Net;
        {
            var timm = TimmFeatureStateDict();
            var ours = StateDict.Entries(net).Select(e => (e.Name, e.Shape)).ToList();
            Assert.Equal(864, timm.Count);
            var missing = timm.Select(t => t.Name).Except(ours.Select(o => o.Name)).ToList();
            var extra = ours.Select(o => o.Name).Except(timm.Select(t => t.Name)).ToList();
            Assert.True(missing.Count == 0 && extra.Count == 0,
                $"missing: {string.Join(", ", missing.Take(10))}; extra: {string.Join(", ", extra.Take(10))}");
            for (int i = 0; i < timm.Count; i++)
            {
                Assert.Equal(timm[i].Name, ours[i].Name);  // same order as torch's state_dict
                Assert.True(timm[i].Shape.SequenceEqual(ours[i].Shape),
                    $"{timm[i].Name}: timm [{string.Join(", ", timm[i].Shape)}], ours [{string.Join(", ", ours[i].Shape)}]");
            }
            long timmParams = timm.Where(t => !t.Name.Contains("running_") && !t.Name.EndsWith("num_batches_tracked"))
                                  .Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
            Assert.Equal(3_860_720, timmParams);
            Assert.Equal(3_860_720, net.ParameterCount());
            Assert.Equal([18, 36, 72, 144], net.FeatureChannels);
        }
    }

    [Theory]
    [InlineData(224, 224)]
    [InlineData(480, 640)]
    [InlineData(65, 97)]  // not a multiple of 32: stride-2 convs round up
    public void ShapePassGivesStrides4To32(int h, int w)
    {
        var net = w18.Net;
        {
            var macs = new MacCounter();
            var stages = new List<string>();
            var f = net.OutShapes(new Chw(3, h, w), macs, (n, _) => stages.Add(n));
            Assert.Equal(["stem", "layer1", "stage2", "stage3", "stage4"], stages);
            int eh = h, ew = w;
            for (int i = 0; i < 2; i++) { eh = (eh + 1) / 2; ew = (ew + 1) / 2; }
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal(new Chw(net.FeatureChannels[i], eh, ew), f[i]);
                eh = (eh + 1) / 2; ew = (ew + 1) / 2;
            }
            // the stem's MACs by hand: conv1 3->64 at H/2, conv2 64->64 at H/4
            var m2 = new MacCounter();
            Shapes.Of(net.Conv1, new Chw(3, h, w), m2);
            long h2 = (h + 1) / 2, w2 = (w + 1) / 2;
            Assert.Equal(h2 * w2 * 64 * 3 * 9, m2.Macs);
            Assert.True(macs.Macs > 0);
        }
    }

    [Fact]
    public void TinyBackboneIsCheapAndHasTheSameStructure()
    {
        var net = new HrNet(Devices.Cpu, new Rng(3), HrNetConfig.Tiny);
        try
        {
            var macs = new MacCounter();
            var f = net.OutShapes(new Chw(3, 64, 64), macs);
            Assert.Equal([new Chw(8, 16, 16), new Chw(16, 8, 8), new Chw(32, 4, 4), new Chw(64, 2, 2)], f);
            // a few MMAC forward: a training step (~3x, x2 FLOP per MAC) stays in the tens of MFLOP
            Assert.InRange(macs.Macs, 2_000_000, 15_000_000);
            Assert.Contains(StateDict.Entries(net), e => e.Name == "stage4.0.fuse_layers.3.0.2.0.weight");
        }
        finally { net.DisposeTensors(); }
    }

    [Theory]
    [InlineData(DecoderKind.SemanticFpn)]
    [InlineData(DecoderKind.HrNetHead)]
    public void MultiTaskModelNamesAndSummary(DecoderKind kind)
    {
        TaskSpec[] tasks = [new("semseg", 40), new("depth", 1)];
        var model = new MultiTaskModel(Devices.Cpu, new Rng(4), HrNetConfig.Tiny, kind, tasks, fpnChannels: 16, decoderChannels: 16);
        try
        {
            var names = StateDict.Entries(model).Select(e => e.Name).ToList();
            Assert.Contains("backbone.conv1.weight", names);
            Assert.Contains(kind == DecoderKind.SemanticFpn ? "decoders.depth.conv_seg.weight" : "decoders.depth.3.weight", names);
            Assert.Equal(kind == DecoderKind.SemanticFpn, names.Any(n => n.StartsWith("fpn.lateral_convs.3.")));
            var rows = ModelSummary.Rows(model, 64, 96);
            var semseg = rows.Single(r => r.Stage == "decoder:semseg");
            int fc = kind == DecoderKind.SemanticFpn ? 16 : 8 + 16 + 32 + 64;
            Assert.Equal(new Chw(fc, 16, 24), semseg.Shapes[0]);
            Assert.Equal(new Chw(40, 64, 96), semseg.Shapes[1]);
            // decoder MACs by hand for the HRNet head: 1x1 conv C->C and C->K at H/4 x W/4
            if (kind == DecoderKind.HrNetHead) Assert.Equal(16L * 24 * (fc * fc + fc * 40), semseg.Macs);
            var sw = new StringWriter();
            ModelSummary.Print(sw, model, 64, 96);
            Assert.Contains($"parameters: {model.ParameterCount():N0}", sw.ToString());
        }
        finally { model.DisposeTensors(); }
    }

    [Fact]
    public void ModelCommandHelpAndErrors()
    {
        Assert.Equal(0, ModelCommand.Run(["--help"]));
        Assert.Equal(2, ModelCommand.Run(["--name", "resnet50"]));
        Assert.Equal(2, ModelCommand.Run(["--name", "hrnet_tiny", "--size", "64"]));
        Assert.Equal(0, ModelCommand.Run(["--name", "hrnet_tiny", "--size", "64x48", "--decoder", "fpn"]));
    }
}
