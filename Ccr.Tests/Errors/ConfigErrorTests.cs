using Ccr.Training;
using Ccr.Train.Commands;
using Ccr.Training.Config;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>Config mistakes: one line naming the file or key, exit 2, and nothing created (no run
/// folder, no generated data) because the whole config is checked first.</summary>
public class ConfigErrorTests : IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void YamlSyntaxErrorNamesTheFileLineAndColumn()
    {
        string dir = _tmp.Dir("yaml");
        string file = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(file, "name: x\ntrain:\n  lr: 0.1\n  batch_size: [4\ntasks: [semseg]\n");
        string run = Path.Combine(dir, "run");
        var r = Cli.Run("train", "--config", file, "--out", run);
        string line = Cli.AssertError(r, ExitCodes.Usage, file + ":", "YAML syntax error");
        Assert.Matches(@"bad\.yaml:\d+:\d+: ", line);
        Assert.False(Directory.Exists(run));
        // a tab-indented file (a common slip) and a key given twice (YAML would keep the last) the same way
        File.WriteAllText(file, "name: x\ntrain:\n\tlr: 0.1\n");
        Cli.AssertError(Cli.Run("train", "--config", file, "--out", run), ExitCodes.Usage, file + ":3:1:", "tab");
        File.WriteAllText(file, "name: x\ntrain:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n");
        Cli.AssertError(Cli.Run("train", "--config", file, "--out", run), ExitCodes.Usage, file + ":5:3:", "duplicate key 'lr'");
        Assert.False(Directory.Exists(run));
    }

    [Theory]
    [InlineData("ccr.gamma=5", "ccr.gamma = 5")]
    [InlineData("train.batch_size=0", "train.batch_size = 0")]
    [InlineData("train.lr=-0.1", "train.lr = -0.1")]
    [InlineData("train.lr=NaN", "'train.lr' expects a finite number, got 'NaN'")]
    [InlineData("train.epochs=two", "'train.epochs' expects an integer")]
    [InlineData("ccr.negatives=0", "ccr.negatives = 0")]
    [InlineData("ccr.top_k=0", "ccr.top_k = 0")]
    [InlineData("data.crop_height=8", "data.crop_height = 8")]
    [InlineData("train.optimizer=adagrad", "train.optimizer = adagrad")]
    [InlineData("tasks=[semseg,semseg]", "lists a task twice")]
    [InlineData("tasks=[semseg,depht]", "unknown task 'depht'")]
    [InlineData("model.backbone=resnet50", "model.backbone = resnet50")]
    [InlineData("loss_weights.semseg=-1", "loss_weights.semseg = -1")]
    [InlineData("train.log_every=0", "train.log_every = 0")]
    public void OutOfRangeValuesAreNamedByTheirKeyBeforeAnythingIsCreated(string set, string expected)
    {
        string dir = _tmp.Dir("range");
        string data = Path.Combine(dir, "data"), run = Path.Combine(dir, "run");
        var r = Cli.Run(Tiny.Train(data, run, set));
        Cli.AssertError(r, ExitCodes.Usage, expected);
        Assert.False(Directory.Exists(run), "run folder made");
        Assert.False(Directory.Exists(data), "data generated");
    }

    [Fact]
    public void TheNegativesKeyIsNamedAsWrittenInTheConfig()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["ccr.negatives=0"]));
        Assert.Contains("ccr.negatives", e.Message);
        Assert.DoesNotContain("num_negatives", e.Message);
    }

    [Fact]
    public void SettingOneLossWeightKeepsTheOtherDefaults()
    {
        var c = ConfigLoader.Load("synth-cpu", ["loss_weights.semseg=2"]);
        Assert.Equal(2f, c.LossWeights["semseg"]);
        Assert.Equal(10f, c.LossWeights["normals"]);
        Assert.Equal(50f, c.LossWeights["edge"]);
        Assert.Equal(2f, c.LossWeights["human_parts"]);
        // the same from a YAML file that lists one weight
        string f = Path.Combine(_tmp.Dir("weights"), "w.yaml");
        File.WriteAllText(f, "loss_weights:\n  depth: 3\n");
        var d = ConfigLoader.Load(f, []);
        Assert.Equal(3f, d.LossWeights["depth"]);
        Assert.Equal(10f, d.LossWeights["normals"]);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["loss_weights.depth=heavy"]));
        Assert.Contains("loss_weights.depth", e.Message);
    }

    [Fact]
    public void TheBestCheckpointMetricDefaultsToTheFirstTasksMainMetricAndMustBeTrained()
    {
        Assert.Equal("depth.rmse", ConfigLoader.Load("synth-cpu", ["tasks=[depth]"]).Eval.Metric);
        Assert.Equal("normals.mean", ConfigLoader.Load("synth-cpu", ["tasks=[normals,semseg]"]).Eval.Metric);
        Assert.Equal("semseg.mIoU", ConfigLoader.Load("synth-cpu", []).Eval.Metric);
        Assert.True(EvalMetrics.LowerIsBetter("depth.rmse"));
        Assert.True(EvalMetrics.LowerIsBetter("normals.median"));
        Assert.False(EvalMetrics.LowerIsBetter("depth.delta1"));
        Assert.False(EvalMetrics.LowerIsBetter("semseg.mIoU"));
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["tasks=[depth]", "eval.metric=semseg.mIoU"]));
        Assert.Contains("eval.metric = semseg.mIoU", e.Message);
        Assert.Contains("not trained", e.Message);
        var e2 = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["eval.metric=depth.rsme"]));
        Assert.Contains("has no metric 'rsme'", e2.Message);
    }

    [Fact]
    public void MissingDatasetFolderAndBaselineStopTrainingBeforeAnythingIsCreated()
    {
        string root = _tmp.Dir("files"), run = Path.Combine(root, "run");
        var r = Cli.Run("train", "--config", "nyud-hrnet18", "--out", run, "--set", "data.path=/nonexistent/NYUDv2", "--set", "model.pretrained=none");
        Cli.AssertError(r, ExitCodes.Usage, "data.path = /nonexistent/NYUDv2: folder does not exist");
        Assert.False(Directory.Exists(run));
        var args = Tiny.Train(Path.Combine(root, "data"), run, "eval.baseline=/nonexistent/eval.json");
        Cli.AssertError(Cli.Run(args), ExitCodes.Usage, "eval.baseline /nonexistent/eval.json: file not found");
        Assert.False(Directory.Exists(run));
        Assert.False(Directory.Exists(Path.Combine(root, "data")));
        // a config naming files that are not here still loads (a checkpoint's saved config on another machine)
        ConfigLoader.Load("nyud-hrnet18", ["data.path=/nonexistent/NYUDv2", "eval.baseline=/nonexistent/eval.json"]);
    }

    [Fact]
    public void EveryProblemIsOnTheOneLine()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["train.batch_size=0", "ccr.gamma=0"]));
        Assert.DoesNotContain("\n", e.Message);
        Assert.Contains("train.batch_size = 0", e.Message);
        Assert.Contains("ccr.gamma = 0", e.Message);
    }

    /// <summary>ablate checks its sweep lists and every run's config before the first run trains:
    /// a bad value fails at once, not after hours of other rows.</summary>
    [Theory]
    [InlineData(new[] { "--k", "0" }, "--k '0'")]
    [InlineData(new[] { "--gamma", "0.01,5" }, "--gamma '5'")]
    [InlineData(new[] { "--tables", "table1", "--set", "eval.metric=semseg.mIoU" }, "eval.metric")] // refused for the st_depth row, which comes after st_semseg
    public void AblateRejectsBadValuesBeforeAnyRun(string[] extra, string expected)
    {
        string dir = _tmp.Dir("ablate");
        string data = Path.Combine(dir, "data"), outDir = Path.Combine(dir, "abl");
        var args = new List<string> { "ablate", "--config", "synth-cpu", "--out", outDir };
        foreach (var s in Tiny.Sets(data)) { args.Add("--set"); args.Add(s); }
        args.AddRange(extra);
        Cli.AssertError(Cli.Run(args.ToArray()), ExitCodes.Usage, expected);
        Assert.False(Directory.Exists(outDir), "ablation folder made");
        Assert.False(Directory.Exists(data), "data generated");
    }
}
