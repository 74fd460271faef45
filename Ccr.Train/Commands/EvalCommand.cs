using Ccr.Kernels;
using Ccr.Nn.IO;
using Ccr.Train.Cli;
using Ccr.Training.Config;
using Ccr.Training.Data;
using Ccr.Training.DataParallel;
using Ccr.Training.MultiTask;
using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary><c>Ccr.Train eval</c>: scores a checkpoint on a dataset split and writes eval.json.</summary>
public static class EvalCommand
{
    public static readonly Args.Option[] Options =
    [
        new("checkpoint", "checkpoint file (last.ckpt / best.ckpt); its saved config is used unless --config is given"),
        new("config", "YAML config or preset overriding the checkpoint's"),
        new("set", "override a config key (e.g. data.path=...)", Repeatable: true),
        new("split", "dataset split to evaluate", Default: "val"),
        new("out", "folder for eval.json and predictions (default: the checkpoint's folder)"),
        new("save-predictions", "also write prediction files (the formats that 'score' reads)", IsFlag: true),
        new("baseline", "single-task eval.json for delta_m"),
        new("device", "cuda, cpu or auto"),
        new("limit", "evaluate only the first N samples (N >= 1)"),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("eval", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train eval --checkpoint FILE [options]",
                "Runs the plain multi-task network on a dataset split at full resolution and writes eval.json\n" +
                "(the metrics of the reference protocol, and delta_m with --baseline). Needs only the checkpoint\n" +
                "and the split's data: no training set, no optimiser.", Options));
            return 0;
        }
        // everything the command line says is checked before the checkpoint is read or data is touched
        string ckpt = a.Get("checkpoint") ?? throw new UsageException("eval: --checkpoint FILE is required");
        int? limit = a.GetInt("limit");
        if (limit is < 1) throw new UsageException($"eval: --limit must be at least 1, got {limit}");
        // [distributed] under mpirun every rank scores its shard and rank 0 writes eval.json
        var dist = Launcher.Start(new DistributedConfig().TimeoutS);
        return RankExit.Run(dist, () => Evaluate(a, ckpt, limit, dist));
    }

    static int Evaluate(Args a, string ckpt, int? limit, DistContext dist)
    {
        using var loaded = LoadedModel.Open(ckpt, a, dist);
        var cfg = loaded.Config;
        var split = a.Get("split")!;
        if (split != cfg.Data.ValSplit && split != cfg.Data.TrainSplit)
            throw new UsageException($"eval: --split must be {cfg.Data.ValSplit} or {cfg.Data.TrainSplit}, got '{split}'");
        var baseline = a.Get("baseline") is string b ? EvalFiles.CheckBaseline(b, cfg.Tasks, "eval: --baseline") : null;

        var data = dist.PrimaryFirst(() => TrainSession.OpenSplit(cfg, split), "the data set"); // rank 0 generates SynthRooms
        string outDir = a.Get("out") ?? Path.GetDirectoryName(Path.GetFullPath(ckpt))!;
        RunFolder.RefuseFile(outDir, "eval");
        var writer = a.Flag("save-predictions") ? new PredictionWriter(Path.Combine(outDir, "predictions")) : null;
        Dictionary<string, Dictionary<string, double>> metrics;
        try
        {
            metrics = Evaluator.Run(loaded.Model, loaded.Device, data, cfg.Eval.BatchSize, writer, limit, dist);
        }
        catch (OutOfMemoryException e)
        {
            throw new OutOfMemoryException($"{e.Message} (evaluating batches of {cfg.Eval.BatchSize} at full resolution); " +
                (cfg.Eval.BatchSize > 1 ? $"try --set eval.batch_size={Math.Max(1, cfg.Eval.BatchSize / 2)}" : "try --device cpu"), e);
        }
        if (!dist.IsPrimary) return 0;
        double? dm = baseline != null ? Training.Metrics.DeltaM.Compute(metrics, baseline) : null;
        Directory.CreateDirectory(outDir);
        RunLog.WriteEval(Path.Combine(outDir, "eval.json"), metrics, dm);
        ResultsTable.Print(metrics, outDir);
        if (dm is double v) Console.WriteLine($"delta_m {v:F2}%");
        if (writer != null) Console.WriteLine($"predictions: {writer.Root}");
        return 0;
    }
}

/// <summary>
/// The network of a checkpoint, for eval and infer: its config (the one saved in the checkpoint,
/// or --config, then --set and --device), the device, and the multi-task model with the weights
/// loaded. Nothing else is built: no datasets, no regulariser, no optimiser state.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    public required TrainConfig Config { get; init; }
    public required Device Device { get; init; }
    public required MultiTaskModel Model { get; init; }
    public required TrainingState State { get; init; }

    /// <param name="dist">[distributed] the ranks of an eval under mpirun: each opens its local device.</param>
    public static LoadedModel Open(string ckpt, Args a, DistContext? dist = null)
    {
        dist ??= DistContext.Single;
        var sets = a.All("set").ToList();
        if (a.Get("device") is string dev) sets.Add("device=" + dev);
        TrainConfig cfg;
        if (a.Get("config") is string c) cfg = ConfigLoader.Load(c, sets);
        else
        {
            string yaml = Checkpoint.ReadConfig(ckpt);
            if (yaml.Trim().Length == 0) throw new UsageException($"{ckpt}: the checkpoint holds no config; pass --config");
            cfg = ConfigLoader.FromText(yaml, $"{ckpt} (its saved config)", sets);
        }
        var device = CommandDevice.Open(cfg.Device, verbose: dist.IsPrimary, cudaOrdinal: dist.LocalRank);
        MultiTaskModel? model = null;
        try
        {
            model = TrainSession.BuildModel(cfg, device, DatasetInfo.Of(cfg.Data.Dataset), new Nn.Rng((ulong)cfg.Seed, 1));
            model.To(cfg.Train.Precision);
            var state = Checkpoint.LoadWeights(ckpt, model, "model.");  // the TrainModule's "model" child; every rank reads it
            model.Eval();
            return new LoadedModel { Config = cfg, Device = device, Model = model, State = state };
        }
        catch
        {
            model?.DisposeTensors();
            device.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Model.DisposeTensors();
        Device.Dispose();
    }
}
