using Ccr.Training;
using Ccr.Nn.IO;
using Ccr.Train.Commands;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>Diverging runs stop with the step and the first non-finite term, exit 4, and never leave
/// a checkpoint holding a non-finite value; best.ckpt follows the metric's direction.</summary>
public class DivergenceTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    /// <summary>Every checkpoint in <paramref name="run"/> loads (Load refuses non-finite values).</summary>
    static void CheckpointsAreFinite(string run)
    {
        foreach (var ckpt in Directory.GetFiles(run, "*.ckpt"))
        {
            var f = SafeTensors.Read(ckpt);
            foreach (var (name, t) in f.Tensors)
                if (t.IsFloat) Assert.True(t.ToFloats().All(float.IsFinite), $"{ckpt}: {name} is not finite");
        }
    }

    [Fact]
    public void AdamWithAHugeRateStopsAndWritesNoNonFiniteCheckpoint()
    {
        string run = Path.Combine(_tmp.Dir("adam"), "run");
        var r = Cli.Run(Tiny.Train(trained.Data, run, "train.lr=1e6", "train.schedule=constant", "train.warmup_epochs=0", "train.epochs=3"));
        string line = Cli.AssertError(r, ExitCodes.Diverged, "stopped: training diverged", "Try a lower train.lr");
        Assert.Matches(@"step \d+", line);
        CheckpointsAreFinite(run);
    }

    [Fact]
    public void SgdThatOverflowsAfterAGoodEpochKeepsTheGoodCheckpointAndNamesIt()
    {
        string run = trained.CopyRun();
        var good = File.ReadAllBytes(Path.Combine(run, "last.ckpt"));
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=3", "--set", "train.optimizer=sgd",
            "--set", "train.lr=1e30", "--set", "train.schedule=constant", "--set", "train.warmup_epochs=0");
        // resuming Adam's state into SGD is refused first: the optimiser is part of the checkpoint
        Cli.AssertError(r, ExitCodes.BadCheckpoint, "optimiser");
        r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=3",
            "--set", "train.lr=1e30", "--set", "train.schedule=constant", "--set", "train.warmup_epochs=0");
        string line = Cli.AssertError(r, ExitCodes.Diverged, "training diverged",
            "became non-finite at step 5", "the weights in memory are those after step 4", Path.Combine(run, "last.ckpt") + " (step 4)");
        // the first non-finite term is named: a task loss, or the gradients with the parameter
        Assert.Matches(@"training diverged: (the \w+ loss|the total loss|the CCR loss|the gradients \(first: the gradient of model\.[\w.]+\)) became", line);
        Assert.Equal(good, File.ReadAllBytes(Path.Combine(run, "last.ckpt")));
        CheckpointsAreFinite(run);
        Assert.True(File.Exists(Path.Combine(run, "plots", "losses.png")), "the plots were not drawn after the stop");
        // the good checkpoint is still usable
        Assert.Equal(0, Cli.Run("eval", "--checkpoint", Path.Combine(run, "last.ckpt"), "--out", _tmp.Dir("ev")).Code);
        Assert.DoesNotContain("\n", line);
    }

    [Fact]
    public void ANonFiniteStepBetweenLogStepsNamesTheRangeWhoseUpdatesWereSkipped()
    {
        string run = Path.Combine(_tmp.Dir("sgd"), "run");
        var r = Cli.Run(Tiny.Train(trained.Data, run, "train.optimizer=sgd", "train.lr=1e30", "train.schedule=constant",
            "train.warmup_epochs=0", "train.log_every=100", "train.epochs=2"));
        string line = Cli.AssertError(r, ExitCodes.Diverged, "training diverged", "found at step 3", "were skipped",
            "no checkpoint has been written yet");
        Assert.Matches(@"became non-finite at step [0-3] ", line);
        Assert.False(File.Exists(Path.Combine(run, "last.ckpt")));
    }

    [Fact]
    public void BestCheckpointOfADepthRunKeepsTheLowestError()
    {
        string run = Path.Combine(_tmp.Dir("best"), "run");
        var r = Cli.Run(Tiny.Train(trained.Data, run, "tasks=[depth]", "ccr.enabled=false", "train.epochs=3", "train.eval_every=1",
            "train.log_every=4"));
        Assert.True(r.Code == 0, r.Err);
        var rmse = Enumerable.Range(1, 3).Select(e => EvalFiles.Read(Path.Combine(run, $"eval-epoch{e:D3}.json"))["depth"]["rmse"]).ToList();
        var best = SafeTensors.Read(Path.Combine(run, "best.ckpt")).Metadata;
        Assert.Equal(rmse.IndexOf(rmse.Min()) + 1, int.Parse(best["epoch"]));
        Assert.Equal(rmse.Min(), double.Parse(best["best_metric"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("metric: depth.rmse", File.ReadAllText(Path.Combine(run, "config.yaml")));
    }
}
