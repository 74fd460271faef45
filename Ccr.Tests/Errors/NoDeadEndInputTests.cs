using Ccr.Training;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Ccr.Tests.Common;
using Ccr.Train.Cli;
using Ccr.Train.Commands;
using Ccr.Training.Config;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>
/// Inputs that passed validation and then crashed or hung (batch norm with one value per channel, a
/// SynthRooms image too large for its buffers, an empty config, a FIFO, a folder), score's exit
/// codes and a NaN prediction, the host memory budget and infer within it, and SIGTERM while the
/// data set is generated. Each test failed before its fix.
/// </summary>
public partial class NoDeadEndInputTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void BatchNormWithOneValuePerChannelIsRefusedByTheConfigCheck()
    {
        // batch 1 with 32x32 crops: HRNet's stride-32 branch sees one value per channel (was code 70)
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.batch_size=1")));
        Assert.Contains("train.batch_size = 1", e.Message);
        Assert.Contains("one value per channel", e.Message);
        string run = Path.Combine(_tmp.Dir("bn"), "run");
        Cli.AssertError(Cli.Run(Tiny.Train(trained.Data, run, "train.batch_size=1")), ExitCodes.Usage, "train.batch_size = 1");
        Assert.False(Directory.Exists(run));
        // what does fit: batch 1 with 64x64 crops (4 values), batch 2 with 32x32 crops
        ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.batch_size=1", "data.height=64", "data.width=64",
                                                 "data.crop_height=64", "data.crop_width=64"));
        ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.batch_size=2"));
        // without augmentation the image size counts
        Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", Tiny.Sets(trained.Data, "train.batch_size=1", "data.augment=false")));
    }

    [Fact]
    public void ASynthRoomsImageTooLargeForItsBuffersIsRefused()
    {
        string data = Path.Combine(_tmp.Dir("huge"), "data");
        var r = Cli.Run(Tiny.Train(data, Path.Combine(_tmp.Dir("huge"), "run"), "data.height=100000", "data.width=100000",
                                   "data.crop_height=64", "data.crop_width=64"));
        Cli.AssertError(r, ExitCodes.Usage, $"data.height = 100000: must be <= {ConfigChecks.MaxSide}", "data.width = 100000");
        Assert.False(Directory.Exists(data));
    }

    [DllImport("libc", SetLastError = true)]
    static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [SkippableFact]
    public void AnEmptyConfigAFifoAndAFolderAreUsageErrors()
    {
        string dir = _tmp.Dir("cfg-files");
        string empty = Path.Combine(dir, "empty.yaml"), comments = Path.Combine(dir, "comments.yaml");
        File.WriteAllText(empty, "");
        File.WriteAllText(comments, "# nothing here yet\n\n");
        // an empty file trained the built-in defaults (50,000 steps, a 553 MB data set)
        Cli.AssertError(Cli.Run("train", "--config", empty, "--out", Path.Combine(dir, "r")), ExitCodes.Usage, empty, "is empty", "synth-cpu");
        Cli.AssertError(Cli.Run("train", "--config", comments, "--out", Path.Combine(dir, "r")), ExitCodes.Usage, comments, "holds no keys");
        // a folder was reported as "does not exist"
        Cli.AssertError(Cli.Run("train", "--config", dir, "--out", Path.Combine(dir, "r")), ExitCodes.Usage, dir, "is a folder");
        Assert.False(Directory.Exists(Path.Combine(dir, "r")));
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "FIFOs");
        // a FIFO with no writer blocked the read forever
        string fifo = Path.Combine(dir, "pipe.yaml");
        Assert.Equal(0, mkfifo(fifo, 0x1b6));
        var task = Task.Run(() => Cli.Run("train", "--config", fifo, "--out", Path.Combine(dir, "r")));
        Assert.True(task.Wait(TimeSpan.FromSeconds(60)), "reading the FIFO blocked");
        Cli.AssertError(task.Result, ExitCodes.Usage, fifo, "pipe");
    }

    [Fact]
    public void ScoreUsageErrorsExitWith2AndANonFinitePredictionIsADataError()
    {
        string root = _tmp.Dir("score");
        string dir = SynthRooms.EnsureCached(Path.Combine(root, "data"), 32, 32, seed: 3, train: 0, val: 2);
        string data = "synth:" + dir;
        Assert.Equal(ExitCodes.Usage, Cli.Run("score", "--data", data, "--predictions", Path.Combine(root, "none")).Code);
        string pred = Path.Combine(root, "pred");
        var ds = SynthRooms.Open(dir, "val", [TaskNames.Depth]);
        var w = new PredictionWriter(pred);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            var depth = (float[])s.Depth!.Clone();
            if (i == 1) depth[Array.FindIndex(depth, v => v > 0)] = float.NaN;
            w.Write(TaskNames.Depth, s.Id, depth, s.Height, s.Width);
        }
        var bad = Cli.Run("score", "--data", data, "--predictions", pred, "--tasks", "depht");
        Assert.Equal(ExitCodes.Usage, bad.Code);
        Assert.Contains("unknown task 'depht'", bad.Err);
        // a NaN depth was scored as "rmse": NaN with exit 0
        var nan = Cli.Run("score", "--data", data, "--predictions", pred, "--tasks", "depth", "--out", Path.Combine(root, "eval.json"));
        Cli.AssertError(nan, ExitCodes.DataError, PredictionWriter.PathFor(pred, TaskNames.Depth, ds.Get(1).Id), "non-finite");
        Assert.False(File.Exists(Path.Combine(root, "eval.json")));
    }

    [Fact]
    public void TheHostMemoryBudgetIsTheSmallerOfTheCgroupLimitAndMemAvailable()
    {
        const string meminfo = "MemTotal:       24731408 kB\nMemFree:        18477412 kB\nMemAvailable:    2000000 kB\n";
        Assert.Equal((2000000L * 1024, "MemAvailable"), HostMemory.Budget(null, meminfo, "max\n", "123\n"));
        Assert.Equal((2000000L * 1024, "MemAvailable"), HostMemory.Budget(null, meminfo, "9223372036854771712\n", "6005534720\n")); // v1: no limit
        Assert.Equal((1000L << 20, "the cgroup's memory limit"), HostMemory.Budget(null, meminfo, $"{1500L << 20}\n", $"{500L << 20}\n"));
        Assert.Equal((12L << 20, "CCR_MEMORY_LIMIT_MB"), HostMemory.Budget("12", meminfo, "max", "0"));
        Assert.Null(HostMemory.Budget(null, null, null, null));
        Assert.Throws<UsageException>(() => HostMemory.Budget("lots", meminfo, null, null));
    }

    [Fact]
    public void TheCpuDevicesPoolIsCappedByTheHostBudget()
    {
        // the CPU device reported 8,796,093,022,207 MiB, so its pool never said "out of memory"
        using var d = CommandDevice.Open("cpu", verbose: false);
        if (HostMemory.Budget() is var (bytes, source) && source != "CCR_MEMORY_LIMIT_MB")
            Assert.Equal((long)(bytes * HostMemory.PoolShare), d.Pool.LimitBytes!.Value, (double)bytes * 0.05);
        Assert.NotNull(d.Pool.LimitBytes);
    }

    [SkippableFact]
    public void InferDownscalesAnImageThatDoesNotFitAndSkipsOneTooLargeToDecode()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "process environment and signals");
        string root = _tmp.Dir("infer-mem");
        string images = Path.Combine(root, "images"), pics = Path.Combine(root, "pics");
        Directory.CreateDirectory(images);
        string small = Directory.GetFiles(trained.Images, "*.png").Order().First();
        File.Copy(small, Path.Combine(images, "a-small.png"));
        Picture(Path.Combine(images, "b-large.png"), 768, 768);
        Picture(Path.Combine(images, "c-huge.png"), 4000, 4000);
        // 48 MiB: the network at 32x32, not at 768x768; decoding 4000x4000 alone needs 240 MB
        var r = CliProcess.Run(["infer", "--checkpoint", trained.Ckpt, "--images", images, "--out", pics],
                               new() { ["CCR_MEMORY_LIMIT_MB"] = "48" }, TimeSpan.FromMinutes(3));
        Assert.True(r.Code == ExitCodes.DataError, r.Output);
        Assert.Contains("b-large.png: 768x768 pixels needs about", r.Output);
        Assert.Contains("predicting at", r.Output);
        Assert.Contains("c-huge.png: 4000x4000 pixels is too large to decode within the host memory budget", r.Output);
        Assert.Equal(["a-small.png", "b-large.png"], Directory.GetFiles(pics).Select(Path.GetFileName).Order());
    }

    /// <summary>A smooth RGB picture of h x w (compresses well, so large ones are small files).</summary>
    static void Picture(string path, int h, int w)
    {
        var b = new byte[h * w * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = (y * w + x) * 3;
                b[i] = (byte)(x * 255 / w); b[i + 1] = (byte)(y * 255 / h); b[i + 2] = 128;
            }
        ImageIo.SaveRgb(path, b, h, w);
    }

    [SkippableFact]
    public void SigtermWhileTheDataIsGeneratedSaysSoAndExits143()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "POSIX signals");
        string root = _tmp.Dir("sigterm-data");
        string data = Path.Combine(root, "data");
        var args = Tiny.Train(data, Path.Combine(root, "run"), "data.train_size=4000", "data.height=64", "data.width=64");
        // signalled once the generator has written its first images
        var r = CliProcess.Run(args, new(), TimeSpan.FromMinutes(3), signalWhen: () =>
            Directory.Exists(data) && Directory.EnumerateFiles(data, "*.png", SearchOption.AllDirectories).Any());
        Assert.True(r.Code == ExitCodes.Terminated, r.Output);
        Assert.Contains("SIGTERM before the first training step (while preparing data or the model)", r.Output);
        Assert.False(File.Exists(Path.Combine(root, "run", "last.ckpt")));
    }
}

/// <summary>Runs Ccr.Train.dll as its own process (for what an in-process run cannot do: its own
/// environment, a signal's default action), optionally sending SIGTERM once a condition holds.</summary>
public static partial class CliProcess
{
    public sealed record Result(int Code, string Output);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public static Result Run(IEnumerable<string> args, Dictionary<string, string> env, TimeSpan limit, Func<bool>? signalWhen = null)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ccr.Train.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["CI"] = "true";
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var output = new StringBuilder();
        using var p = ChildProcess.Start(psi, output);
        var sw = Stopwatch.StartNew();
        if (signalWhen != null)
        {
            while (!p.HasExited && !signalWhen() && sw.Elapsed < limit) Thread.Sleep(10);
            if (!p.HasExited) Kill(p.Id, 15);
        }
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (output) return new Result(-1, "timed out\n" + output);
        }
        p.WaitForExit();
        lock (output) return new Result(p.ExitCode, output.ToString());
    }
}
