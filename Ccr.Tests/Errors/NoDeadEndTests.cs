using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Nn.IO;
using Ccr.Train.Cli;
using Ccr.Train.Commands;
using Ccr.Training.Config;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>
/// The cases where a user lost a run or believed a stopped run had finished: a stop during the
/// epoch-end evaluation, two runs in one folder, folders left without last.ckpt, a resume's --set
/// kept after it failed, a resume with another config, eval.json after a full disk, a flipped bit in
/// a checkpoint, and --out naming a file. Each test failed before its fix.
/// </summary>
public class NoDeadEndTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void AStopDuringTheEpochEndEvaluationIsAStopNotACompletedRun()
    {
        // the stop arrives while epoch 1 is evaluated (after the loop's own check): it used to end the
        // loop as Completed, exit 0 and print the results of 4 of 12 steps
        string run = Path.Combine(_tmp.Dir("stop-eval"), "run");
        var cfg = ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.epochs=3", "train.eval_every=1"));
        using var device = Device.CreateCpu();
        using var session = new TrainSession(cfg, device);
        Trainer trainer = null!;
        trainer = new Trainer(session, run, line => { if (line.StartsWith("eval after epoch 1")) trainer.RequestStop("SIGTERM"); });
        Assert.Equal(TrainOutcome.Stopped, trainer.Run());
        Assert.Equal(4, trainer.Step);
        Assert.Equal("4", SafeTensors.Read(Path.Combine(run, "last.ckpt")).Metadata["step"]);
        Assert.Equal(ExitCodes.Terminated, TrainCommand.StopExitCode(trainer.StopReason));
    }

    [Fact]
    public void ASecondRunIntoAFolderInUseIsRefusedAndChangesNothing()
    {
        string run = _tmp.Dir("in-use");
        string copy = trained.CopyRun();
        var before = Tiny.Snapshot(copy);
        using (var held = RunLock.TryAcquire(run))
        using (var heldCopy = RunLock.TryAcquire(copy))
        {
            Assert.NotNull(held);
            Assert.Null(RunLock.TryAcquire(run)); // exclusive, even within one process
            Cli.AssertError(Cli.Run(Tiny.Train(trained.Data, run)), ExitCodes.Usage, run, "in use by another running Ccr.Train process", "--out DIR");
            Assert.Empty(Directory.GetFileSystemEntries(run));
            var r = Cli.Run("train", "--out", copy, "--resume", "--set", "train.epochs=2");
            Cli.AssertError(r, ExitCodes.Usage, copy, "in use");
            Tiny.AssertUnchanged(before, copy);
        }
        // released with its holder: the folder takes a run again, and the lock leaves no file behind
        var ok = Cli.Run(Tiny.Train(trained.Data, run, "train.max_steps=1"));
        Assert.True(ok.Code == 0, ok.Err);
        Assert.DoesNotContain(Directory.GetFiles(run), f => f.Contains("lock"));
    }

    [SkippableFact]
    public void TheLockOfAKilledProcessIsReleasedByTheKernel()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/usr/bin/flock"), "needs Linux and util-linux's flock(1)");
        string run = _tmp.Dir("killed");
        // flock(1) takes the same lock (flock(2) on the folder) and holds it until it is killed
        using var p = Process.Start(new ProcessStartInfo("/usr/bin/flock", ["-o", run, "sleep", "60"]) { UseShellExecute = false })!;
        try
        {
            var sw = Stopwatch.StartNew();
            while (!RunLock.IsHeld(run) && sw.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(20);
            Assert.True(RunLock.IsHeld(run), "flock(1) did not take the lock");
            Cli.AssertError(Cli.Run(Tiny.Train(trained.Data, run)), ExitCodes.Usage, "in use");
        }
        finally
        {
            p.Kill(entireProcessTree: true); // SIGKILL: no chance to unlock
            p.WaitForExit();
        }
        Assert.False(RunLock.IsHeld(run));
    }

    [Fact]
    public void TheDemoPassesOverAFolderInUse()
    {
        string cwd = Directory.GetCurrentDirectory(), root = _tmp.Dir("demo-lock");
        try
        {
            Directory.SetCurrentDirectory(root);
            using var held = RunLock.TryAcquire(Path.Combine(root, "runs", "synth-cpu"));
            var args = new List<string> { "demo", "--device", "cpu" };
            foreach (var s in Tiny.Sets(trained.Data, "train.max_steps=1")) { args.Add("--set"); args.Add(s); }
            var r = Cli.Run([.. args]);
            Assert.True(r.Code == 0, r.Err);
            Assert.True(File.Exists(Path.Combine(root, "runs", "synth-cpu-2", "last.ckpt")));
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(root, "runs", "synth-cpu")));
        }
        finally
        {
            Directory.SetCurrentDirectory(cwd);
        }
    }

    [Fact]
    public void AFolderWithoutLastCkptIsAFreshStartThatKeepsTheOldFiles()
    {
        // what a run that died before its first checkpoint leaves (kill -9, divergence, a bad image)
        string run = _tmp.Dir("dead-end");
        File.WriteAllText(Path.Combine(run, "config.yaml"), "old config\n");
        File.WriteAllText(Path.Combine(run, "metrics.csv"), "step,loss\n0,1.5\n");
        Cli.AssertError(Cli.Run("train", "--out", run, "--resume"), ExitCodes.Usage, "holds no last.ckpt", "train without --resume");
        // ... and the advice that error gives now works
        var r = Cli.Run(Tiny.Train(trained.Data, run));
        Assert.True(r.Code == 0, r.Err);
        string keep = Path.Combine(run, "previous-1");
        Assert.Contains($"{run} holds no last.ckpt", r.Out);
        Assert.Contains($"metrics.csv, config.yaml moved to {keep}", r.Out);
        Assert.Equal("old config\n", File.ReadAllText(Path.Combine(keep, "config.yaml")));
        Assert.Equal("step,loss\n0,1.5\n", File.ReadAllText(Path.Combine(keep, "metrics.csv")));
        Assert.True(File.Exists(Path.Combine(run, "last.ckpt")));
        Assert.StartsWith("step,", File.ReadAllLines(Path.Combine(run, "metrics.csv"))[0]);
        Assert.Equal(1, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Count(l => l.StartsWith("step,")));
    }

    [Fact]
    public void AResumeThatDivergesLeavesConfigYamlForTheNextPlainResume()
    {
        string run = trained.CopyRun();
        string yaml = Path.Combine(run, "config.yaml");
        string before = File.ReadAllText(yaml);
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=3", "--set", "train.lr=1e30",
            "--set", "train.schedule=constant", "--set", "train.warmup_epochs=0");
        Cli.AssertError(r, ExitCodes.Diverged, "training diverged");
        Assert.Equal(before, File.ReadAllText(yaml));
        var ok = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("epochs: 2", File.ReadAllText(yaml));
    }

    [Fact]
    public void AResumeWithAnotherConfigIsRefusedBeforeAnyDataIsGenerated()
    {
        string run = trained.CopyRun();
        var before = Tiny.Snapshot(run);
        string newData = Path.Combine(_tmp.Dir("other-data"), "data");
        var args = new List<string> { "train", "--out", run, "--resume", "--config", "synth-cpu" };
        foreach (var s in Tiny.Sets(newData, "model.head_channels=16")) { args.Add("--set"); args.Add(s); }
        Cli.AssertError(Cli.Run([.. args]), ExitCodes.BadCheckpoint, "last.ckpt", "does not match this config",
            "model.head_channels = 16 (the checkpoint's: 8)");
        Assert.False(Directory.Exists(newData), "data generated before the refusal");
        Tiny.AssertUnchanged(before, run);
    }

    [SkippableFact]
    public void AFullDiskWhileWritingBestCkptLeavesNoEvalJsonDescribingIt()
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs Linux's /dev/full");
        string run = _tmp.Dir("full-best");
        string tmp = Path.GetFullPath(Path.Combine(run, "best.ckpt")) + ".tmp-" + Environment.ProcessId;
        File.CreateSymbolicLink(tmp, "/dev/full");
        var r = Cli.Run(Tiny.Train(trained.Data, run));
        Cli.AssertError(r, ExitCodes.IoError, "best.ckpt", "No space left on device");
        Assert.False(File.Exists(Path.Combine(run, "eval.json")), "eval.json written for a best.ckpt that is not there");
        Assert.False(File.Exists(Path.Combine(run, "best.ckpt")));
    }

    [Fact]
    public void AFlippedBitInACheckpointIsRefusedByEvalAndResumeWithCode5()
    {
        string run = trained.CopyRun();
        string ckpt = Path.Combine(run, "last.ckpt");
        var f = SafeTensors.Read(ckpt);
        // the file as it was written, but for the lowest mantissa bit of one weight: still finite
        string name = f.Names.First(n => n.StartsWith("model.") && f.Tensors[n].IsFloat && f.Tensors[n].Numel() > 4);
        var t = f.Tensors[name];
        var data = (byte[])t.Data.Clone();
        data[4] ^= 1;
        SafeTensors.Write(ckpt, f.Names.Select(n => (n, n == name ? new HostTensor(t.DType, t.Shape, data) : f.Tensors[n])), f.Metadata);
        Assert.All(SafeTensors.Read(ckpt).Tensors.Values.Where(h => h.IsFloat), h => Assert.True(h.ToFloats().All(float.IsFinite)));
        Cli.AssertError(Cli.Run("eval", "--checkpoint", ckpt, "--out", _tmp.Dir("flip-eval")), ExitCodes.BadCheckpoint,
            ckpt, "damaged checkpoint", name, "CRC-32");
        var before = Tiny.Snapshot(run);
        Cli.AssertError(Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2"), ExitCodes.BadCheckpoint, "damaged checkpoint");
        Tiny.AssertUnchanged(before, run);
    }

    [Fact]
    public void ACheckpointWrittenBeforeChecksumsStillLoads()
    {
        string old = Path.Combine(_tmp.Dir("no-crc"), "old.ckpt");
        var f = SafeTensors.Read(trained.Ckpt);
        Assert.Contains(f.Metadata.Keys, k => k.StartsWith("crc32."));
        SafeTensors.Write(old, f.Names.Select(n => (n, f.Tensors[n])), f.Metadata.Where(kv => !kv.Key.StartsWith("crc32.")).ToDictionary());
        var r = Cli.Run("eval", "--checkpoint", old, "--out", _tmp.Dir("no-crc-eval"));
        Assert.True(r.Code == 0, r.Err);
    }

    [Fact]
    public void ResumingWithAnotherBatchSizeLogsEachStepOnceInOrder()
    {
        // checkpoint at step 4 of batch 3; with batch 6 that is step 2: the rows used to go 0,1,2,3,2,3
        string run = trained.CopyRun();
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.batch_size=6", "--set", "train.epochs=2");
        Assert.True(r.Code == 0, r.Err);
        static List<int> Steps(string csv) => File.ReadAllLines(csv).Skip(1).Select(l => int.Parse(l.Split(',')[0])).ToList();
        Assert.Equal([0, 1, 2, 3], Steps(Path.Combine(run, "metrics.before-step-4.csv")));
        Assert.Equal([2, 3], Steps(Path.Combine(run, "metrics.csv")));
        Assert.Contains("metrics.csv: its steps 0-3 counted batches of another size", r.Out);
    }

    [Fact]
    public void OutNamingAFileIsAUsageError()
    {
        string file = Path.Combine(_tmp.Dir("out-file"), "notes.txt");
        File.WriteAllText(file, "mine");
        Cli.AssertError(Cli.Run(Tiny.Train(trained.Data, file)), ExitCodes.Usage, file, "is a file, not a folder");
        Cli.AssertError(Cli.Run("train", "--out", file, "--resume"), ExitCodes.Usage, file, "is a file");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--out", file), ExitCodes.Usage, file, "is a file");
        Cli.AssertError(Cli.Run("infer", "--checkpoint", trained.Ckpt, "--images", trained.Images, "--out", file), ExitCodes.Usage, file, "is a file");
        Assert.Equal("mine", File.ReadAllText(file));
    }

    [Fact]
    public void CcrDeviceReplacesTheConfigsAutoAndAnUnknownValueIsAnError()
    {
        Assert.Equal("cpu", CommandDevice.Choice("auto", "cpu"));
        Assert.Equal("cuda", CommandDevice.Choice(null, " CUDA "));
        Assert.Equal("auto", CommandDevice.Choice("auto", null));
        Assert.Equal("cpu", CommandDevice.Choice("cpu", "cuda")); // --device / an explicit config device win
        var e = Assert.Throws<UsageException>(() => CommandDevice.Choice("auto", "tpu"));
        Assert.Contains("CCR_DEVICE must be cuda, cpu or auto, got 'tpu'", e.Message);
        Assert.Throws<UsageException>(() => CommandDevice.Choice("cpu", "tpu"));
    }
}
