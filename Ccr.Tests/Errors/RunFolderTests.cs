using Ccr.Train.Commands;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>A run folder is never damaged by a mistake: a new run does not overwrite an old one, a
/// failed resume changes nothing, a resume finds its config even without config.yaml, stale
/// temporary checkpoints are cleared, and a resumed metrics.csv has each step once.</summary>
public class RunFolderTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void TrainingIntoAFolderHoldingARunIsRefusedNamingResumeAndOut()
    {
        string run = trained.CopyRun();
        var before = Tiny.Snapshot(run);
        var r = Cli.Run(Tiny.Train(trained.Data, run));
        Cli.AssertError(r, ExitCodes.Usage, run, "already holds a run", "last.ckpt", "--resume", "--out");
        Tiny.AssertUnchanged(before, run);
    }

    [Fact]
    public void RunningTheDemoTwiceStartsAFreshNumberedFolder()
    {
        string cwd = Directory.GetCurrentDirectory(), root = _tmp.Dir("demo");
        try
        {
            Directory.SetCurrentDirectory(root);
            var args = new List<string> { "demo", "--device", "cpu" };
            foreach (var s in Tiny.Sets(trained.Data, "train.max_steps=1")) { args.Add("--set"); args.Add(s); }
            var first = Cli.Run([.. args]);
            Assert.True(first.Code == 0, first.Err);
            var before = Tiny.Snapshot(Path.Combine(root, "runs", "synth-cpu"));
            var second = Cli.Run([.. args]);
            Assert.True(second.Code == 0, second.Err);
            Assert.True(File.Exists(Path.Combine(root, "runs", "synth-cpu-2", "last.ckpt")));
            Tiny.AssertUnchanged(before, Path.Combine(root, "runs", "synth-cpu"));
        }
        finally
        {
            Directory.SetCurrentDirectory(cwd);
        }
    }

    [Fact]
    public void AFailedResumeChangesNothingAndAPlainResumeStillWorks()
    {
        string run = trained.CopyRun();
        var before = Tiny.Snapshot(run);
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "model.head=fpn", "--set", "train.epochs=2");
        Cli.AssertError(r, ExitCodes.BadCheckpoint, "last.ckpt", "does not match");
        Tiny.AssertUnchanged(before, run);

        var ok = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("resumed from", ok.Out);
        Assert.Contains("epochs: 2", File.ReadAllText(Path.Combine(run, "config.yaml")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ResumeWithoutConfigYamlTakesTheConfigSavedInTheCheckpoint(bool deleted)
    {
        string run = trained.CopyRun();
        string yaml = Path.Combine(run, "config.yaml");
        string original = File.ReadAllText(yaml);
        if (deleted) File.Delete(yaml); else File.WriteAllText(yaml, "");
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("using the config saved in", r.Out);
        // the run's own settings (not the built-in defaults: 2000 images, head_channels 64) came back
        Assert.Equal(original.Replace("\n  epochs: 1\n", "\n  epochs: 2\n"), File.ReadAllText(yaml));
    }

    [Fact]
    public void ResumingAFolderWithoutACheckpointSaysSo()
    {
        string empty = _tmp.Dir("no-ckpt");
        Cli.AssertError(Cli.Run("train", "--out", empty, "--resume"), ExitCodes.Usage, "holds no last.ckpt");
        Cli.AssertError(Cli.Run("train", "--resume"), ExitCodes.Usage, "--out DIR");
        Assert.Empty(Directory.GetFileSystemEntries(empty));
    }

    [Fact]
    public void TemporaryCheckpointsOfKilledWritesAreRemovedAtStart()
    {
        string run = trained.CopyRun();
        string stale = Path.Combine(run, "last.ckpt.tmp-2147483000");   // no such process
        string live = Path.Combine(run, "best.ckpt.tmp-1");  // process 1 is running: maybe still writing
        File.WriteAllBytes(stale, new byte[100]);
        File.WriteAllBytes(live, new byte[100]);
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Assert.True(r.Code == 0, r.Err);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(live));
        Assert.Contains("left by a checkpoint write that was killed", r.Out);
    }

    [Fact]
    public void ResumingAtAnEpochBoundaryLogsEachStepOnce()
    {
        // killed after the epoch-1 checkpoint (step 4) had logged step 4: that row is logged again by the resumed run
        string run = trained.CopyRun();
        string csv = Path.Combine(run, "metrics.csv");
        var rows = File.ReadAllLines(csv);
        Assert.Equal(5, rows.Length); // header + steps 0..3
        File.AppendAllText(csv, "4" + rows[^1][rows[^1].IndexOf(',')..] + "\n");
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Assert.True(r.Code == 0, r.Err);
        var steps = File.ReadAllLines(csv).Skip(1).Select(l => int.Parse(l.Split(',')[0])).ToList();
        Assert.Equal(Enumerable.Range(0, 8), steps);
    }

    [Fact]
    public void TruncateAfterKeepsOnlyTheStepsBeforeTheCheckpoint()
    {
        var log = new RunLog(_tmp.Dir("runlog"));
        for (int s = 0; s < 6; s++) log.Row(new Dictionary<string, double> { ["step"] = s, ["loss"] = s * 0.5 });
        log.TruncateAfter(4);
        var steps = File.ReadAllLines(log.MetricsCsv).Skip(1).Select(l => l.Split(',')[0]).ToList();
        Assert.Equal(["0", "1", "2", "3"], steps);
    }
}
