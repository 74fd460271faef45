using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Tests.Common;
using Ccr.Training.MultiTask;
using Xunit;

namespace Ccr.Tests.Models;

/// <summary>Forward passes of the model zoo (need the conv, batch norm, resize and concat kernels).</summary>
public class HrNetForwardTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", name);

    /// <summary>tools/golden_hrnet_block.py: a two-branch HighResolutionModule in PyTorch (eval mode).</summary>
    [Fact]
    public void HrModuleMatchesPyTorchGolden()
    {
        var d = Devices.Cpu;
        var m = new HrModule(d, new Rng(5), bottleneck: false, numBlocks: [1, 1], inChannels: [4, 8], numChannels: [4, 8]);
        try
        {
            var report = StateDict.Load(m, Fixture("hrnet_block_weights.safetensors"));
            Assert.True(report.IsClean, report.Describe());
            m.Eval();
            var io = SafeTensors.Read(Fixture("hrnet_block_io.safetensors")).Tensors;
            using var scope = new TensorScope();
            Tensor T(string n) => Tensor.FromArray(d, io[n].ToFloats(), io[n].Shape.Select(s => (int)s).ToArray());
            var y = m.Forward([T("x0"), T("x1")]);
            for (int i = 0; i < 2; i++)
            {
                var want = io[$"y{i}"];
                Assert.Equal(want.Shape.Select(s => (int)s), y[i].Shape);
                Tol.Close(want.ToFloats().Select(v => (double)v).ToArray(), y[i].ToArray(), 1e-4, 1e-4, $"y{i}");
            }
        }
        finally { m.DisposeTensors(); }
    }

    [Fact]
    public void SavedAndReloadedHrNetGivesIdenticalFeatures()
    {
        var d = Devices.Cpu;
        var a = new HrNet(d, new Rng(6), HrNetConfig.Tiny);
        var b = new HrNet(d, new Rng(7), HrNetConfig.Tiny);
        string path = Path.Combine(Path.GetTempPath(), $"ccr-hrnet-{Guid.NewGuid():N}.safetensors");
        try
        {
            StateDict.Save(path, a);
            StateDict.Load(b, path);
            a.Eval(); b.Eval();
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, Rand.Floats(Rand.New(8), 2 * 3 * 32 * 32), 2, 3, 32, 32);
            var fa = a.Forward(x);
            var fb = b.Forward(x);
            Assert.Equal(4, fa.Length);
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal([2, HrNetConfig.Tiny.FeatureChannels[i], 8 >> i, 8 >> i], fa[i].Shape);
                Assert.Equal(fa[i].ToArray(), fb[i].ToArray());
            }
        }
        finally { a.DisposeTensors(); b.DisposeTensors(); File.Delete(path); }
    }

    [Theory]
    [InlineData(DecoderKind.SemanticFpn)]
    [InlineData(DecoderKind.HrNetHead)]
    public void MultiTaskForwardGivesPredictionsAndFeatureMaps(DecoderKind kind)
    {
        var d = Devices.Cpu;
        var model = new MultiTaskModel(d, new Rng(9), HrNetConfig.Tiny, kind, [new("semseg", 5), new("depth", 1)], 16, 16);
        try
        {
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, Rand.Floats(Rand.New(10), 2 * 3 * 40 * 48), 2, 3, 40, 48);
            var outs = model.Forward(x);
            int fc = kind == DecoderKind.SemanticFpn ? 16 : 120;
            Assert.Equal([2, 5, 40, 48], outs["semseg"].Prediction.Shape);
            Assert.Equal([2, 1, 40, 48], outs["depth"].Prediction.Shape);
            Assert.Equal([2, fc, 10, 12], outs["semseg"].Features.Shape);
            Assert.All(outs["depth"].Prediction.ToArray(), v => Assert.True(float.IsFinite(v)));
        }
        finally { model.DisposeTensors(); }
    }
}
