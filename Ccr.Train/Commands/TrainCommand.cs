using Ccr.Train.Cli;
using Ccr.Training.Config;
using Ccr.Training.DataParallel;
using Ccr.Training.MultiTask;
using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary><c>Ccr.Train train</c>: trains a model from a YAML config into a run folder.</summary>
public static class TrainCommand
{
    public static readonly Args.Option[] Options =
    [
        new("config", "YAML config file, or a built-in preset: synth-cpu, synth-gpu, synth-ablate, nyud-hrnet18, pascal-hrnet18"),
        new("set", "override a config key, e.g. --set train.lr=0.001 --set tasks=[semseg,depth]", Repeatable: true),
        new("out", "run folder (default: runs/<config name>)"),
        new("device", "cuda, cpu or auto (overrides the config and CCR_DEVICE)"),
        new("seed", "random seed (overrides the config)"),
        new("precision", "fp32 or tf32: GPU convolution / GEMM arithmetic (overrides train.precision)"),
        new("resume", "continue the run in --out from its last.ckpt, bit for bit", IsFlag: true),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("train", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train train [options]",
                "Trains a multi-task model (with cross-task contrastive regularisation when ccr.enabled),\n" +
                "evaluating and checkpointing at epoch ends. Writes config.yaml, metrics.csv, eval.json,\n" +
                "last.ckpt and best.ckpt into the run folder.", Options));
            return 0;
        }
        bool resume = a.Flag("resume");
        TrainConfig cfg;
        string dir;
        if (resume)
        {
            dir = a.Get("out") ?? (a.Get("config") != null ? Path.Combine("runs", LoadConfig(a).Name)
                : throw new UsageException("train --resume: name the run folder with --out DIR"));
            cfg = ResumeConfig(a, dir);
        }
        else
        {
            cfg = LoadConfig(a);
            dir = a.Get("out") ?? Path.Combine("runs", cfg.Name);
        }
        // [distributed] under mpirun: one rank per process; a failing rank stops the job with its reason
        var dist = Launcher.Start(cfg.Distributed.TimeoutS);
        return RankExit.Run(dist, () => TrainAndReport(cfg, dir, resume, dist: dist));
    }

    /// <summary>The config from --config (else <paramref name="fallback"/>, else the defaults), then
    /// --set, --seed, --device and --precision.</summary>
    public static TrainConfig LoadConfig(Args a, string? fallback = null) => ConfigLoader.Load(a.Get("config") ?? fallback, Overrides(a));

    static List<string> Overrides(Args a)
    {
        var sets = a.All("set").ToList();
        if (a.Get("seed") is string seed) sets.Add("seed=" + seed);
        if (a.Get("device") is string dev) sets.Add("device=" + dev);
        if (a.Get("precision") is string precision) sets.Add("train.precision=" + precision);
        return sets;
    }

    /// <summary>The exit code of a run stopped by a signal: 143 for SIGTERM, 130 for Ctrl-C.</summary>
    public static int StopExitCode(string? reason) => reason == "SIGTERM" ? ExitCodes.Terminated : ExitCodes.Interrupted;

    /// <summary>
    /// The config of a resumed run: --config if given, else the run folder's config.yaml, else (when
    /// that is missing or empty) the config saved in last.ckpt, never the built-in defaults; then
    /// --set, --seed and --device. Reads only: the folder is changed once the checkpoint has loaded.
    /// </summary>
    public static TrainConfig ResumeConfig(Args a, string dir)
    {
        string last = Path.Combine(dir, "last.ckpt");
        RunFolder.RefuseFile(dir, "train --resume");
        if (!Directory.Exists(dir)) throw new UsageException($"train --resume: run folder '{dir}' does not exist");
        if (!File.Exists(last))
            throw new UsageException($"train --resume: '{dir}' holds no last.ckpt to resume from (train without --resume to start a run there)");
        if (a.Get("config") is string c) return CheckAgainstCheckpoint(ConfigLoader.Load(c, Overrides(a)), last);
        string yaml = Path.Combine(dir, "config.yaml");
        if (File.Exists(yaml) && File.ReadAllText(yaml).Trim().Length > 0) return CheckAgainstCheckpoint(ConfigLoader.Load(yaml, Overrides(a)), last);
        string saved = Nn.IO.Checkpoint.ReadConfig(last);
        if (saved.Trim().Length == 0)
            throw new UsageException($"train --resume: {yaml} is missing or empty and {last} holds no config; pass --config FILE");
        Console.WriteLine($"{yaml} is missing or empty: using the config saved in {last}");
        return ConfigLoader.FromText(saved, $"{last} (its saved config)", Overrides(a));
    }

    /// <summary>
    /// Refuses (code 5, before any data is generated or model built) a resume whose config differs
    /// from the one saved in <paramref name="last"/> in a setting that shapes the weights or the
    /// optimiser state. A checkpoint without a readable saved config is checked when it loads.
    /// </summary>
    static TrainConfig CheckAgainstCheckpoint(TrainConfig cfg, string last)
    {
        TrainConfig saved;
        try { saved = ConfigLoader.FromText(Nn.IO.Checkpoint.ReadConfig(last), last, []); }
        catch (UsageException) { return cfg; }
        static IEnumerable<(string Key, string Value)> Shape(TrainConfig c) =>
        [
            ("tasks", "[" + string.Join(",", c.Tasks) + "]"), ("data.dataset", c.Data.Dataset.ConfigWord()),
            ("model.backbone", c.Model.Backbone.ConfigWord()), ("model.head", c.Model.Head.ConfigWord()),
            ("model.fpn_channels", c.Model.FpnChannels.ToString()), ("model.head_channels", c.Model.HeadChannels.ToString()),
            ("ccr.enabled", c.Ccr.Enabled.ToString().ToLowerInvariant()), ("ccr.sharing", c.Ccr.Sharing.ConfigWord()),
            ("ccr.proj_dim", c.Ccr.ProjectionDim.ToString()), ("train.optimizer", c.Train.Optimizer.ConfigWord()),
        ];
        var diff = Shape(saved).Zip(Shape(cfg)).Where(p => p.First.Value != p.Second.Value)
            .Select(p => $"{p.First.Key} = {p.Second.Value} (the checkpoint's: {p.First.Value})").ToList();
        if (diff.Count > 0)
            throw new Nn.IO.CheckpointException($"{last}: checkpoint does not match this config's model or optimiser: {string.Join("; ", diff)}; nothing was " +
                "loaded or changed. Resume without --config / those --set, or start a new run with --out DIR");
        return cfg;
    }

    /// <summary>
    /// Trains <paramref name="cfg"/> into <paramref name="dir"/> and prints the results. Everything
    /// that can be checked is checked before the folder is touched: the config (by its loader), a
    /// folder that already holds a run (without <paramref name="resume"/>), the data, the model and,
    /// when resuming, the checkpoint. Returns 0, or 130 / 143 when stopped by Ctrl-C / SIGTERM
    /// (last.ckpt written); errors are exceptions (see <see cref="Entry"/>).
    /// </summary>
    public static int TrainAndReport(TrainConfig cfg, string dir, bool resume, bool printTable = true, DistContext? dist = null,
                                     bool numbered = false)
    {
        dist ??= DistContext.Single;
        // Ctrl-C / SIGTERM stop after the current step once training runs, and say what they stopped
        // before that; [distributed] under mpirun a signal stops the whole job
        using var signals = dist.IsDistributed ? null : new StopSignals();
        if (!resume && dist.IsPrimary && !numbered) RunFolder.RefuseExisting(dir, "train"); // [distributed] rank 0 owns the folder
        if (!string.IsNullOrEmpty(cfg.Eval.Baseline)) EvalFiles.CheckBaseline(cfg.Eval.Baseline, cfg.Tasks, "eval.baseline");
        // a missing file stops here, before anything starts; [distributed] rank 0 loads it and sends it
        string? weights = dist.IsPrimary ? PretrainedWeights.Resolve(cfg.Model) : null;
        using var device = CommandDevice.Open(cfg.Device, verbose: dist.IsPrimary, cudaOrdinal: dist.LocalRank);
        using var session = new TrainSession(cfg, device, dist: dist);
        if (dist.IsPrimary)
            Console.WriteLine(weights != null ? PretrainedWeights.Load(session.Model.Backbone, weights)
                : $"pretrained backbone: none (model.pretrained={(cfg.Model.Pretrained.Length == 0 ? "\"\"" : cfg.Model.Pretrained)}), training from scratch");
        DistributedTraining.ShareParameters(session); // [distributed] rank 0's (pretrained) weights on every rank
        if (dist.IsPrimary) Console.WriteLine($"model: {cfg.Model.Backbone.ConfigWord()} + {cfg.Model.Head.ConfigWord()} heads, {session.Model.ParameterCount():N0} parameters" +
                          (session.CcrLoss != null ? $", CCR with {session.CcrLoss.ProjectorCount} projector(s)" : ", no CCR"));
        // the folder is taken (locked, a dead end's files kept aside) once everything that can fail has been built
        using var folderLock = dist.IsPrimary ? RunFolder.Claim(ref dir, resume, numbered, "train", Console.WriteLine) : null;
        if (dist.IsPrimary) Console.WriteLine($"data: {cfg.Data.Dataset.ConfigWord()} ({session.TrainSet.Count} train / {session.ValSet.Count} val), " +
                          $"{session.Loader.BatchesPerEpoch} steps per epoch, {session.TotalSteps} steps; run folder {dir}");
        var trainer = new Trainer(session, dir);
        if (resume) trainer.Resume();
        TrainOutcome outcome;
        signals?.Attach(trainer);
        if (dist.IsDistributed) Launcher.StopHook = trainer.RequestStop; // [distributed] SIGTERM from the launcher
        try
        {
            outcome = trainer.Run();
        }
        catch (OutOfMemoryException e)
        {
            throw new OutOfMemoryException($"{e.Message} (batch size {cfg.Train.BatchSize}, crops of {cfg.Data.CropHeight}x{cfg.Data.CropWidth}); " +
                $"try --set train.batch_size={Math.Max(1, cfg.Train.BatchSize / 2)} or smaller data.crop_height / data.crop_width", e);
        }
        finally
        {
            Launcher.StopHook = null;
        }
        if (outcome == TrainOutcome.Stopped)
        {
            if (dist.IsPrimary) Console.Error.WriteLine($"stopped by {trainer.StopReason} after {trainer.Step} of {session.TotalSteps} steps: wrote {trainer.LastCkpt}; " +
                $"continue with: Ccr.Train train --out {dir} --resume");
            return StopExitCode(trainer.StopReason);
        }
        if (printTable && trainer.LastEval != null && dist.IsPrimary)
            ResultsTable.Print(trainer.LastEval, dir, ChanceLevels.Compute(session.ValSet, cfg.Tasks));
        return ExitCodes.Ok;
    }
}
