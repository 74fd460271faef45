using Ccr.Kernels;
using Ccr.Nn.IO;
using Ccr.Train.Cli;
using Ccr.Train.Config;
using Ccr.Train.Data;
using Ccr.Train.Distributed;
using Ccr.Train.Training;

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
        new("limit", "evaluate only the first N samples"),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("eval", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train eval --checkpoint FILE [options]",
                "Runs the plain multi-task network on a dataset split at full resolution and writes eval.json\n" +
                "(the metrics of the reference protocol, and delta_m with --baseline).", Options));
            return 0;
        }
        string ckpt = a.Get("checkpoint") ?? throw new UsageException("eval: --checkpoint FILE is required");
        // [distributed] under mpirun every rank scores its shard and rank 0 writes eval.json
        var dist = Launcher.Start(new DistributedConfig().TimeoutS);
        return Launcher.Run(dist, () => Evaluate(a, ckpt, dist));
    }

    static int Evaluate(Args a, string ckpt, DistContext dist)
    {
        var (session, device) = LoadFromCheckpoint(ckpt, a, dist);
        using var _d = device;
        using var _s = session;
        string outDir = a.Get("out") ?? Path.GetDirectoryName(Path.GetFullPath(ckpt))!;
        if (dist.IsPrimary) Directory.CreateDirectory(outDir);
        var split = a.Get("split")!;
        var data = split == session.Config.Data.ValSplit ? session.ValSet
                 : split == session.Config.Data.TrainSplit ? session.TrainSet
                 : throw new UsageException($"eval: --split must be {session.Config.Data.ValSplit} or {session.Config.Data.TrainSplit}");
        var writer = a.Flag("save-predictions") ? new PredictionWriter(Path.Combine(outDir, "predictions")) : null;
        var metrics = Evaluator.Run(session, data, session.Config.Eval.BatchSize, writer, a.GetInt("limit"));
        if (!dist.IsPrimary) return 0;
        double? dm = null;
        if (a.Get("baseline") is string b) dm = EvalFiles.DeltaM(metrics, b);
        RunLog.WriteEval(Path.Combine(outDir, "eval.json"), metrics, dm);
        ResultsTable.Print(metrics, outDir);
        if (dm is double v) Console.WriteLine($"delta_m {v:F2}%");
        if (writer != null) Console.WriteLine($"predictions: {writer.Root}");
        return 0;
    }

    /// <summary>Builds the session a checkpoint was trained with and loads its weights.</summary>
    public static (TrainSession, Device) LoadFromCheckpoint(string ckpt, Args a, DistContext? dist = null)
    {
        dist ??= DistContext.Single;
        if (!File.Exists(ckpt)) throw new UsageException($"checkpoint '{ckpt}' does not exist");
        TrainConfig cfg;
        var sets = a.All("set").ToList();
        if (a.Get("device") is string dev) sets.Add("device=" + dev);
        if (a.Get("config") is string c) cfg = ConfigLoader.Load(c, sets);
        else
        {
            var meta = SafeTensors.Read(ckpt).Metadata;
            if (!meta.TryGetValue("config", out var yaml) || yaml.Length == 0)
                throw new UsageException($"{ckpt}: the checkpoint holds no config; pass --config");
            string tmp = Path.GetTempFileName();
            File.WriteAllText(tmp, yaml);
            try { cfg = ConfigLoader.Load(tmp, sets); } finally { File.Delete(tmp); }
        }
        var device = Device.Create(cfg.Device, verbose: dist.IsPrimary, cudaOrdinal: dist.LocalRank);
        var session = new TrainSession(cfg, device, dist: dist);
        Checkpoint.Load(ckpt, session.Root); // every rank reads it (a folder all machines see)
        return (session, device);
    }
}
