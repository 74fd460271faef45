using Ccr.Training.Config;
using Ccr.Training;
using Ccr.Kernels;
using System.Runtime.InteropServices;
using Ccr.Nn.IO;
using Ccr.Train.Commands;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>A full disk while writing a checkpoint, and Ctrl-C / SIGTERM sent to a real training
/// process: the run stops with a documented code and last.ckpt is whole.</summary>
public partial class SignalAndDiskTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [SkippableFact]
    public void AFullDiskWhileWritingACheckpointStopsAndKeepsThePreviousOne()
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs Linux's /dev/full");
        string run = trained.CopyRun();
        string last = Path.Combine(run, "last.ckpt");
        var good = File.ReadAllBytes(last);
        // the checkpoint's temporary file of this process is /dev/full: every write fails with ENOSPC
        string tmp = last + ".tmp-" + Environment.ProcessId;
        File.CreateSymbolicLink(tmp, "/dev/full");
        var r = Cli.Run("train", "--out", run, "--resume", "--set", "train.epochs=2");
        Cli.AssertError(r, ExitCodes.IoError, last, "No space left on device", "the previous checkpoint is unchanged");
        Assert.Equal(good, File.ReadAllBytes(last));
        Assert.False(File.Exists(tmp));
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>
    /// The signal is sent to this test process itself while a tiny run trains in it with the
    /// command's handlers installed (a handler that failed to cancel the default action would end the
    /// test run, so this fails loudly). The run stops after the current step, writes last.ckpt with
    /// every logged step, exits with 143 / 130, and continues from there with --resume.
    /// </summary>
    [SkippableTheory]
    [InlineData(15, "SIGTERM", ExitCodes.Terminated)]
    [InlineData(2, "Ctrl-C", ExitCodes.Interrupted)]
    public void ASignalStopsTheRunAfterWritingLastCkptAndExitsNonZero(int signal, string name, int code)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "POSIX signals");
        string run = Path.Combine(_tmp.Dir("signal"), "run");
        var cfg = ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.epochs=100"));
        using var device = Device.CreateCpu();
        using var session = new TrainSession(cfg, device);
        Trainer? trainer = null;
        int logged = 0;
        trainer = new Trainer(session, run, line =>
        {
            if (line.StartsWith("step ") && ++logged == 2) Assert.Equal(0, Kill(Environment.ProcessId, signal));
        });
        TrainOutcome outcome;
        using (new StopSignals(trainer)) outcome = trainer.Run();
        Assert.Equal(TrainOutcome.Stopped, outcome);
        Assert.Equal(name, trainer.StopReason);
        Assert.Equal(code, TrainCommand.StopExitCode(trainer.StopReason));
        Assert.True(trainer.Step < 100, $"stopped only after {trainer.Step} steps");

        // last.ckpt holds the steps that were logged, and the run continues from it
        string csv = Path.Combine(run, "metrics.csv");
        long step = long.Parse(SafeTensors.Read(Path.Combine(run, "last.ckpt")).Metadata["step"]);
        Assert.Equal(trainer.Step, step);
        Assert.Equal(step, File.ReadAllLines(csv).Length - 1);
        var r = Cli.Run("train", "--out", run, "--resume", "--set", $"train.max_steps={step + 1}");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains($"resumed from {Path.Combine(run, "last.ckpt")} at step {step}", r.Out);
    }
}
