using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Tests.Common;
using Ccr.Tests.Data;
using Ccr.Train.Commands;
using Ccr.Training.Config;
using Ccr.Training.MultiTask;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>The paper presets as published: Semantic FPN widths, and timm's weights found where timm
/// users have them, loaded with a clear account, or a clear stop.</summary>
public class PaperPresetTests
{
    [Theory]
    [InlineData("nyud-hrnet18")]
    [InlineData("pascal-hrnet18")]
    public void PaperPresetsUsePublishedWidthsAndTimmWeights(string preset)
    {
        var c = ConfigLoader.Load(preset, []);
        Assert.Equal((HeadKind.Fpn, 256, 128, "timm"), (c.Model.Head, c.Model.FpnChannels, c.Model.HeadChannels, c.Model.Pretrained));
        Assert.Equal(BackboneKind.HrnetW18SmallV2, c.Model.Backbone);
    }

    [Fact]
    public void FpnAndDecoderWidthsAreSeparateKeys()
    {
        string data = TestData.TempDir("widths");
        var c = ConfigLoader.Load("synth-cpu", ["data.path=" + data, "data.train_size=3", "data.val_size=1", "data.height=32",
            "data.width=32", "data.crop_height=32", "data.crop_width=32", "train.batch_size=3", "model.head=fpn",
            "model.fpn_channels=12", "model.head_channels=8", "ccr.proj_dim=8"]);
        using var s = new TrainSession(c, Devices.Cpu);
        Assert.Equal(12, s.Model.Neck!.Channels);
        Assert.All(s.Model.Decoders.Values, d => Assert.Equal(8, d.FeatureChannels));
        Assert.Equal(256, new TrainConfig().Model.FpnChannels);
        Assert.Equal(128, new TrainConfig().Model.HeadChannels);
    }

    static string FakeSnapshot(string hub, string commit)
    {
        string dir = Path.Combine(hub, "models--timm--hrnet_w18_small_v2.ms_in1k", "snapshots", commit);
        Directory.CreateDirectory(dir);
        string f = Path.Combine(dir, "model.safetensors");
        File.WriteAllBytes(f, [1, 2, 3]);
        return f;
    }

    static Func<string, string?> Env(params (string K, string V)[] vars) =>
        k => vars.FirstOrDefault(v => v.K == k).V;

    [Fact]
    public void TimmWeightsAreFoundInTheHuggingFaceCache()
    {
        var m = new ModelConfig { Backbone = BackboneKind.HrnetW18SmallV2, Pretrained = "timm" };
        string root = TestData.TempDir("hf");
        string home = Path.Combine(root, "home"), hfHome = Path.Combine(root, "hfhome");
        // ~/.cache/huggingface/hub when nothing is set
        string inHome = FakeSnapshot(Path.Combine(home, ".cache", "huggingface", "hub"), "aaa");
        Assert.Equal(inHome, PretrainedWeights.Resolve(m, Env(("HOME", home))));
        // HF_HOME/hub comes first; the snapshot refs/main names wins over a newer one
        string named = FakeSnapshot(Path.Combine(hfHome, "hub"), "c0ffee");
        FakeSnapshot(Path.Combine(hfHome, "hub"), "newer");
        File.SetLastWriteTimeUtc(named, DateTime.UtcNow.AddDays(-3));
        Directory.CreateDirectory(Path.Combine(hfHome, "hub", "models--timm--hrnet_w18_small_v2.ms_in1k", "refs"));
        File.WriteAllText(Path.Combine(hfHome, "hub", "models--timm--hrnet_w18_small_v2.ms_in1k", "refs", "main"), "c0ffee\n");
        Assert.Equal(named, PretrainedWeights.Resolve(m, Env(("HOME", home), ("HF_HOME", hfHome))));
        // a path, none and empty
        Assert.Equal(inHome, PretrainedWeights.Resolve(new ModelConfig { Pretrained = inHome }, Env()));
        Assert.Null(PretrainedWeights.Resolve(new ModelConfig { Pretrained = "none" }, Env()));
        Assert.Null(PretrainedWeights.Resolve(new ModelConfig { Pretrained = "" }, Env()));
    }

    [Fact]
    public void MissingWeightsStopWithDirections()
    {
        var m = new ModelConfig { Backbone = BackboneKind.HrnetW18SmallV2, Pretrained = "timm" };
        string empty = TestData.TempDir("hf-empty");
        var e = Assert.Throws<ConfigException>(() => PretrainedWeights.Resolve(m, Env(("HOME", empty), ("HF_HOME", empty))));
        Assert.Contains("timm.create_model('hrnet_w18_small_v2.ms_in1k', pretrained=True)", e.Message);
        Assert.Contains("huggingface-cli download timm/hrnet_w18_small_v2.ms_in1k", e.Message);
        Assert.Contains("--set model.pretrained=none", e.Message);
        Assert.Contains(Path.Combine(empty, "hub"), e.Message);
        var tiny = Assert.Throws<ConfigException>(() => PretrainedWeights.Resolve(new ModelConfig { Backbone = BackboneKind.HrnetTiny, Pretrained = "timm" }, Env()));
        Assert.Contains("model.pretrained=none", tiny.Message);
        var path = Assert.Throws<ConfigException>(() => PretrainedWeights.Resolve(new ModelConfig { Pretrained = "/no/such/w.safetensors" }, Env()));
        Assert.Contains("/no/such/w.safetensors", path.Message);

        // The train command stops before it builds anything (no run folder).
        var cfg = ConfigLoader.Load("nyud-hrnet18", ["model.pretrained=/no/such/w.safetensors"]);
        string run = Path.Combine(TestData.TempDir("run"), "r");
        Assert.Throws<ConfigException>(() => TrainCommand.TrainAndReport(cfg, run, resume: false));
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void AClassifierCheckpointLoadsAndSaysWhatMatched()
    {
        var d = Devices.Cpu;
        var src = new HrNet(d, new Rng(1), HrNetConfig.Tiny);
        // timm's file: the feature weights, a classifier head, maybe no num_batches_tracked
        var tensors = StateDict.ToHost(src).Where(t => !t.Name.EndsWith("num_batches_tracked")).ToList();
        tensors.Add(("classifier.weight", HostTensor.FromFloats(new float[10 * 4], [10, 4])));
        string file = Path.Combine(TestData.TempDir("w"), "model.safetensors");
        SafeTensors.Write(file, tensors);
        var dst = new HrNet(d, new Rng(2), HrNetConfig.Tiny);
        string line = PretrainedWeights.Load(dst, file);
        int n = tensors.Count - 1;
        Assert.Contains(file, line);
        Assert.Contains($"{n} of {n} tensors loaded", line);
        Assert.Contains("1 tensors of the file unused", line);
        Assert.Equal(src.Parameters().First().ToArray(), dst.Parameters().First().ToArray());
        src.DisposeTensors();

        // a file of other names loads nothing and says so
        string wrong = Path.Combine(TestData.TempDir("w"), "wrong.safetensors");
        SafeTensors.Write(wrong, tensors.Select(t => ("module." + t.Name, t.Tensor)));
        var fresh = new HrNet(d, new Rng(3), HrNetConfig.Tiny);
        var before = fresh.Parameters().First().ToArray();
        var e = Assert.Throws<ConfigException>(() => PretrainedWeights.Load(fresh, wrong));
        Assert.Contains($"0 of {n} tensors match", e.Message);
        Assert.Contains(wrong, e.Message);
        Assert.Equal(before, fresh.Parameters().First().ToArray());
        dst.DisposeTensors();
        fresh.DisposeTensors();
    }
}
