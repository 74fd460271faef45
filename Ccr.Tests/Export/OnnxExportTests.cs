using Ccr.Nn;
using Ccr.Nn.Models;
using Ccr.Nn.Modules;
using Ccr.Tests.Common;
using Ccr.Training.Export;
using Ccr.Training.MultiTask;
using Onnx;
using Xunit;

namespace Ccr.Tests.Export;

/// <summary>
/// The ONNX export against our own eval forward under ONNX Runtime (CPU provider), loaded at its
/// strictest settings, with the graph both as written and as ONNX Runtime optimises it. Models carry
/// random batch-norm statistics and affine parameters, so the folding of batch norm is exercised.
/// Bound met: max |ours - ONNX Runtime| &lt;= 1e-4 x max(range of our output, 1) for every output.
/// </summary>
public class OnnxExportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const double Tol = 1e-4;

    static readonly TaskSpec[] DemoTasks = [new("semseg", 10), new("depth", 1), new("normals", 3)];

    /// <summary>Random running statistics and affine parameters in every batch norm (eval mode uses them).</summary>
    internal static void RandomiseBatchNorm(Module root, int seed)
    {
        var r = new Random(seed);
        foreach (var bn in Walk(root).OfType<BatchNorm2d>())
        {
            int c = bn.Channels;
            bn.Weight.Data.CopyFrom(Enumerable.Range(0, c).Select(_ => 0.5f + r.NextSingle()).ToArray());
            bn.Bias.Data.CopyFrom(Enumerable.Range(0, c).Select(_ => 0.2f * (r.NextSingle() - 0.5f)).ToArray());
            bn.RunningMean.Data.CopyFrom(Enumerable.Range(0, c).Select(_ => 0.2f * (r.NextSingle() - 0.5f)).ToArray());
            bn.RunningVar.Data.CopyFrom(Enumerable.Range(0, c).Select(_ => 0.5f + 1.5f * r.NextSingle()).ToArray());
        }
    }

    static IEnumerable<Module> Walk(Module m) => new[] { m }.Concat(m.Children().SelectMany(c => Walk(c.Module)));

    internal static MultiTaskModel Demo(int seed = 3)
    {
        var m = new MultiTaskModel(Devices.Cpu, new Rng((ulong)seed, 1), HrNetConfig.Tiny, DecoderKind.HrNetHead, DemoTasks);
        RandomiseBatchNorm(m, seed);
        m.Eval();
        return m;
    }

    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"ccr-onnx-{Guid.NewGuid():N}-{name}");

    void AssertParity(MultiTaskModel model, string path, (int N, int H, int W)[] sizes, bool optimize)
    {
        using var runner = new OnnxRunner(path, threads: 1, optimize: optimize);
        int seed = 0;
        foreach (var (n, h, w) in sizes)
        {
            var x = OnnxParity.RandomImage(n, h, w, seed++);
            foreach (var d in OnnxParity.Compare(model, Devices.Cpu, runner, x, n, h, w))
            {
                output.WriteLine($"{d.Task} {n}x{h}x{w} optimize={optimize}: max |diff| {d.MaxAbs:G3}, range {d.Range:G3}, relative {d.Relative:G3}");
                Assert.True(d.Range > 1e-3, $"{d.Task} at {n}x{h}x{w}: a constant output ({d.Range}) would prove nothing");
                Assert.True(d.Relative <= Tol, $"{d.Task} at {n}x{h}x{w} (optimize {optimize}): max |diff| {d.MaxAbs:G3}, range {d.Range:G3}");
            }
        }
    }

    [Fact]
    public void DemoModelMatchesOurForwardUnderOnnxRuntimeAtSeveralSizes()
    {
        var model = Demo();
        string path = Temp("demo.onnx");
        try
        {
            OnnxExporter.Save(OnnxExporter.Export(model, new OnnxExportOptions(Dynamic: true)), path);
            var sizes = new[] { (1, 48, 64), (2, 37, 53), (1, 32, 32), (1, 65, 31) }; // odd, and sizes that pad past 32
            AssertParity(model, path, sizes, optimize: false);
            AssertParity(model, path, sizes[..2], optimize: true);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void SemanticFpnModelMatchesAndTaskSubsetsExportOnlyTheirOutputs()
    {
        // the paper's decoder kind (FPN neck + Semantic FPN per task) on the small backbone
        var model = new MultiTaskModel(Devices.Cpu, new Rng(5, 1), HrNetConfig.Tiny, DecoderKind.SemanticFpn,
            [new("semseg", 7), new("edge", 1), new("sal", 2), new("human_parts", 5)], fpnChannels: 16, decoderChannels: 8);
        RandomiseBatchNorm(model, 5);
        model.Eval();
        string path = Temp("fpn.onnx");
        try
        {
            OnnxExporter.Save(OnnxExporter.Export(model, new OnnxExportOptions(["sal", "edge"], Dynamic: true)), path);
            using (var r = new OnnxRunner(path))
            {
                Assert.Equal(["sal", "edge"], r.Tasks);
                Assert.Equal(["sal_logits", "edge_logits"], r.Outputs);
            }
            AssertParity(model, path, [(1, 41, 67), (1, 64, 96)], optimize: false);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void PaperNetworkMatchesOnSmallImages()
    {
        // HRNet-W18-small-v2 + FPN 256 / decoder 128, as the nyud-hrnet18 preset builds it (40 classes)
        var model = new MultiTaskModel(Devices.Cpu, new Rng(7, 1), HrNetConfig.W18SmallV2, DecoderKind.SemanticFpn,
            [new("semseg", 40), new("depth", 1), new("normals", 3), new("edge", 1)]);
        RandomiseBatchNorm(model, 7);
        model.Eval();
        string path = Temp("paper.onnx");
        try
        {
            OnnxExporter.Save(OnnxExporter.Export(model, new OnnxExportOptions(Dynamic: true)), path);
            AssertParity(model, path, [(1, 64, 64), (1, 45, 71)], optimize: true);
        }
        finally
        {
            File.Delete(path);
            model.DisposeTensors();
        }
    }

    [Fact]
    public void FixedSizeModelRecordsOpsetProducerNamesAndFoldsBatchNorm()
    {
        var model = Demo();
        var m = OnnxExporter.Export(model, new OnnxExportOptions(Height: 48, Width: 64));
        string path = Temp("fixed.onnx");
        try
        {
            OnnxExporter.Save(m, path);
            var back = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)); // as written, through ONNX's message types
            Assert.Equal("Ccr", back.ProducerName);
            Assert.Contains(back.OpsetImport, o => o.Domain == "" && o.Version == 17);
            Assert.Equal(8, back.IrVersion);
            var input = Assert.Single(back.Graph.Input);
            Assert.Equal("image", input.Name);
            Assert.Equal([1L, 3, 48, 64], input.Type.TensorType.Shape.Dim.Select(d => d.DimValue));
            Assert.Equal(["semseg_logits", "depth", "normals"], back.Graph.Output.Select(o => o.Name));
            Assert.All(back.Graph.Output, o => Assert.False(string.IsNullOrEmpty(o.DocString)));
            Assert.Equal([1L, 10, 48, 64], back.Graph.Output[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue));
            Assert.DoesNotContain(back.Graph.Node, n => n.OpType == "BatchNormalization");
            Assert.Equal(model.Backbone.Config.Name, back.MetadataProps.Single(p => p.Key == "ccr.backbone").Value);
            AssertParity(model, path, [(1, 48, 64)], optimize: false);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ParityCheckCatchesAChangedWeight()
    {
        // the comparison can fail: change one conv weight after exporting and the difference shows
        var model = Demo(11);
        string path = Temp("changed.onnx");
        try
        {
            OnnxExporter.Save(OnnxExporter.Export(model, new OnnxExportOptions(Dynamic: true)), path);
            var w = model.Decoders["depth"].Classifier.Weight;
            var v = w.ToArray();
            v[0] += 0.5f;
            w.Data.CopyFrom(v);
            using var runner = new OnnxRunner(path, threads: 1);
            var diffs = OnnxParity.Compare(model, Devices.Cpu, runner, OnnxParity.RandomImage(1, 32, 48, 1), 1, 32, 48);
            Assert.True(diffs.Single(d => d.Task == "depth").Relative > Tol);
            Assert.True(diffs.Single(d => d.Task == "semseg").Relative <= Tol);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void BadRequestsNameWhatIsWrong()
    {
        var model = Demo();
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(model, new OnnxExportOptions(["sal"], Dynamic: true)));
        Assert.Contains("'sal'", e.Message);
        Assert.Contains("semseg", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(model, new OnnxExportOptions()));
        Assert.Contains("--dynamic", e2.Message);
        string junk = Temp("junk.onnx");
        File.WriteAllBytes(junk, [1, 2, 3, 4]);
        try { Assert.Throws<InvalidDataException>(() => new OnnxRunner(junk)); }
        finally { File.Delete(junk); }
    }
}
