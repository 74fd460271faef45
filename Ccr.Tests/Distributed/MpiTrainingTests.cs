using Ccr.Nn.IO;
using Ccr.Tests.Common;
using Ccr.Tests.Data;
using Ccr.Training.Config;
using Ccr.Training.DataParallel;
using Ccr.Training;
using Xunit;
using Xunit.Abstractions;

namespace Ccr.Tests.Distributed;

/// <summary>A scratch folder with the tiny SynthRooms set the MPI tests share (the first run's
/// rank 0 generates it, the other rank waits for it), and the uninterrupted 2-rank reference run
/// that two tests compare with (made by whichever needs it first).</summary>
public sealed class MpiScratch : IDisposable
{
    public string Root { get; } = TestData.TempDir("mpi");
    public string Data => Path.Combine(Root, "data");
    public MpiRun.Result? Reference;
    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Real 2-rank runs of <c>mpirun -np 2 dotnet Ccr.Train.dll train</c> on the CPU accelerator,
/// checked against one process in this test host: the ranks' parameters stay bit-identical (also
/// with CCR drawing pairs and anchors per rank), synchronised batch norm matches one process on the
/// combined batch, sharded evaluation gives one process's metrics, a rank that is killed, throws or
/// hangs stops the job within a bound with a message naming it, and the killed run's last
/// checkpoint resumes on one rank. Skipped (not passed) where Open MPI is absent; CI installs it.
/// Tiny model, 32x32 images, a few steps: each run takes seconds.
/// </summary>
public class MpiTrainingTests(MpiScratch scratch, ITestOutputHelper output) : IClassFixture<MpiScratch>
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(240);

    List<string> Sets(params string[] more) =>
    [
        "data.path=" + scratch.Data, "data.train_size=12", "data.val_size=5", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1", "device=cpu",
        "train.batch_size=2", "train.epochs=1", "train.eval_every=0", "train.log_every=1",
        "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", "eval.batch_size=2", .. more,
    ];

    static string[] Cli(List<string> sets, string run) =>
        ["train", "--config", "synth-cpu", "--out", run, .. sets.SelectMany(s => new[] { "--set", s })];

    static TrainConfig Config(List<string> sets) => ConfigLoader.Load("synth-cpu", sets);

    string Dir(string name) => Path.Combine(scratch.Root, name);

    MpiRun.Result Mpi(List<string> sets, string run, Dictionary<string, string>? env = null)
    {
        var r = MpiRun.Train(2, Cli(sets, run), Limit, env);
        output.WriteLine($"mpirun exit {r.ExitCode} after {r.Elapsed.TotalSeconds:F1} s{(r.TimedOut ? " (killed: time limit)" : "")}");
        output.WriteLine(r.Output);
        return r;
    }

    static string[] Hashes(string ckpt) => SafeTensors.Read(ckpt).Metadata["extra.param_hash"].Split(';');

    /// <summary>CCR on (task pairs and anchors drawn per rank), batch norm per rank, Adam; 2 epochs
    /// of 3 steps with a global batch of 4, evaluated at the end.</summary>
    List<string> ReferenceSets(params string[] more) => Sets(["train.epochs=2", .. more]);
    string ReferenceRun => Dir("reference");

    void EnsureReference()
    {
        scratch.Reference ??= Mpi(ReferenceSets(), ReferenceRun);
        Assert.Equal(0, scratch.Reference.ExitCode);
    }

    [SkippableFact]
    public void TwoRanksStayBitIdenticalAndTheirShardedEvaluationIsOneProcesss()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        EnsureReference();
        var sets = ReferenceSets();
        string run = ReferenceRun;

        // only rank 0 wrote the log: a header and one row per step
        Assert.Equal(7, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length);
        string last = Path.Combine(run, "last.ckpt");
        var meta = SafeTensors.Read(last).Metadata;
        Assert.Equal("2", meta["extra.world_size"]);
        Assert.Equal("4", meta["extra.global_batch"]);
        var hashes = Hashes(last);
        Assert.Equal(2, hashes.Length);
        Assert.Equal(hashes[0], hashes[1]); // every parameter bit of rank 1 equals rank 0's

        // one process: the saved parameters are rank 0's (same hash), and its evaluation of them
        // equals the sharded one (5 images in batches of 2: rank 0 scored 3, rank 1 scored 2)
        var cfg = Config(sets);
        using var session = new TrainSession(cfg, Devices.Cpu);
        Checkpoint.Load(last, session.Root);
        Assert.Equal(hashes[0], DistributedTraining.ParameterHash(session).ToString("x16"));
        var single = Evaluator.Run(session, session.ValSet, cfg.Eval.BatchSize);
        var sharded = EvalFiles.Read(Path.Combine(run, "eval.json"));
        Assert.Equal(single.Keys.Order(), sharded.Keys.Order());
        foreach (var (task, m) in single)
            foreach (var (k, v) in m)
                Assert.True(Math.Abs(v - sharded[task][k]) <= 1e-12 * Math.Max(1, Math.Abs(v)),
                    $"{task}.{k}: sharded {sharded[task][k]}, one process {v}");
    }

    [SkippableFact]
    public void SyncBatchNormMatchesOneProcessOnTheCombinedBatch()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        // Without CCR (its anchors are drawn per rank) and with losses that are plain means over
        // equally many pixels per image, two ranks with batch 2 and one process with batch 4 take
        // the same steps. SGD with a small rate for 3 steps: this tiny network with batch-4 norms
        // amplifies float rounding ~10x per step (four ranks of batch 1 drift from two ranks of
        // batch 2 just as fast), so longer runs part ways by rounding alone.
        var sets = Sets("tasks=[semseg,depth]", "ccr.enabled=false", "data.augment=false", "train.optimizer=sgd",
                        "train.lr=0.001", "train.max_steps=3", "distributed.sync_bn=true");
        string run2 = Dir("syncbn2"), run1 = Dir("syncbn1");
        var r = Mpi(sets, run2);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("synchronised batch norms", r.Output);
        var hashes = Hashes(Path.Combine(run2, "last.ckpt"));
        Assert.Equal(hashes[0], hashes[1]);

        using (var session = new TrainSession(Config([.. sets, "train.batch_size=4"]), Devices.Cpu))
            new Trainer(session, run1, _ => { }).Run();

        var a = SafeTensors.Read(Path.Combine(run2, "last.ckpt")).Tensors;
        var b = SafeTensors.Read(Path.Combine(run1, "last.ckpt")).Tensors;
        double num = 0, den = 0;
        int compared = 0;
        foreach (var (name, tb) in b)
        {
            if (!name.StartsWith("model.") || !tb.IsFloat || tb.DType != "F32") continue;
            var x = a[name].ToFloats();
            var y = tb.ToFloats();
            double n = 0, d = 0;
            for (int i = 0; i < y.Length; i++) { n += (x[i] - (double)y[i]) * (x[i] - y[i]); d += (double)y[i] * y[i]; }
            num += n; den += d; compared++;
            // each tensor too, loosely: a norm left per rank would be off by percents here
            Assert.True(Math.Sqrt(n) <= 1e-3 * Math.Sqrt(d) + 1e-6, $"{name}: relative difference {Math.Sqrt(n / Math.Max(d, 1e-30)):E2}");
        }
        Assert.True(compared > 50, $"{compared} tensors");
        double rel = Math.Sqrt(num / den);
        output.WriteLine($"parameters and running statistics, relative L2 difference 2 ranks vs 1 process: {rel:E2}");
        Assert.True(rel <= 1e-5, $"relative L2 difference {rel:E2} > 1e-5");
    }

    [SkippableFact]
    public void AKilledRankStopsTheJobAndItsLastCheckpointResumesOnTwoRanksOrOne()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        EnsureReference();
        // The watchdog is set far beyond the limit: what stops rank 0 here is mpirun noticing the death.
        var sets = ReferenceSets("distributed.timeout_s=600");
        string run = Dir("killed");
        var r = Mpi(sets, run, new() { ["CCR_FAULT"] = "1:4:kill" });
        Assert.False(r.TimedOut, "rank 0 was still running at the time limit");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Matches(@"process rank 1 .*exited on signal 9", r.Output);
        Assert.Contains("rank 0 of 2: terminated by mpirun", r.Output);
        string copy = Dir("killed-one-rank");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(run)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));

        // on two ranks again: the last 3 steps repeat the uninterrupted run's bit for bit (each
        // rank's CCR RNG was saved), and so do the final parameters
        var resumed = MpiRun.Train(2, [.. Cli(sets, run), "--resume"], Limit);
        output.WriteLine(resumed.Output);
        Assert.Equal(0, resumed.ExitCode);
        var want = File.ReadAllLines(Path.Combine(ReferenceRun, "metrics.csv")).Select(LossColumns);
        var got = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Select(LossColumns);
        Assert.Equal(want, got);
        Assert.Equal(Hashes(Path.Combine(ReferenceRun, "last.ckpt")), Hashes(Path.Combine(run, "last.ckpt")));

        // on one process with batch 2: epoch 1 (3 steps of a global batch of 4) continues at step 6
        // of its 6-step epochs, the same place in the data
        var messages = new List<string>();
        using var session = new TrainSession(Config(sets), Devices.Cpu);
        var trainer = new Trainer(session, copy, messages.Add) { RecordStepLosses = true };
        trainer.Resume();
        Assert.Equal(6, trainer.Step);
        Assert.Contains(messages, m => m.Contains("2 rank(s) with global batch 4 on 1 rank(s) with global batch 2") && m.Contains("becomes step 6"));
        trainer.Run();
        Assert.Equal(6, trainer.StepLosses.Count);
        Assert.All(trainer.StepLosses, l => Assert.True(float.IsFinite(l)));
    }

    /// <summary>A metrics.csv row without its timing columns (images/s, which differ run to run).</summary>
    static string LossColumns(string line)
    {
        var cells = line.Split(',');
        return string.Join(",", cells.Take(cells.Length - 2)); // images_per_s and memory_mb are the last two
    }

    [SkippableFact]
    public void AFailingRankNamesItselfAndTheReason()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        var r = Mpi(Sets("train.max_steps=2", "distributed.timeout_s=600"), Dir("throws"), new() { ["CCR_FAULT"] = "1:1:throw" });
        Assert.False(r.TimedOut);
        Assert.Equal(70, r.ExitCode); // an unexpected exception: reported as a bug would be, with its trace
        Assert.Contains("rank 1 of 2 failed: internal error (a bug; please report it with this trace): " +
            "System.InvalidOperationException: injected fault at step 1 (CCR_FAULT); stopping all ranks", r.Output);
    }

    [SkippableFact]
    public void AHangingRankIsStoppedByItsPeersWatchdog()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        var r = Mpi(Sets("train.max_steps=3", "distributed.timeout_s=3"), Dir("hangs"), new() { ["CCR_FAULT"] = "1:1:hang" });
        Assert.False(r.TimedOut);
        Assert.Equal(7, r.ExitCode);
        Assert.Matches(@"rank 0 of 2 failed: rank 0: all-reduce of gradient bucket 1 of \d+ \(backward pass 2\) did not complete within 3 s", r.Output);
    }
}
