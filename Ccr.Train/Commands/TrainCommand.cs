using Ccr.Kernels;
using Ccr.Train.Cli;
using Ccr.Train.Config;
using Ccr.Train.Models;
using Ccr.Train.Training;

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
        var cfg = LoadConfig(a);
        string dir = a.Get("out") ?? Path.Combine("runs", cfg.Name);
        return TrainAndReport(cfg, dir, a.Flag("resume"));
    }

    /// <summary>The config from --config (or the run folder's config.yaml when resuming), then --set,
    /// --seed and --device.</summary>
    public static TrainConfig LoadConfig(Args a, string? fallback = null)
    {
        string? path = a.Get("config");
        if (path == null && a.Flag("resume") && a.Get("out") is string o && File.Exists(Path.Combine(o, "config.yaml")))
            path = Path.Combine(o, "config.yaml");
        path ??= fallback;
        var sets = a.All("set").ToList();
        if (a.Get("seed") is string seed) sets.Add("seed=" + seed);
        if (a.Get("device") is string dev) sets.Add("device=" + dev);
        return ConfigLoader.Load(path, sets);
    }

    public static int TrainAndReport(TrainConfig cfg, string dir, bool resume, bool printTable = true)
    {
        string? weights = PretrainedWeights.Resolve(cfg.Model);  // a missing file stops here, before anything starts
        using var device = Device.Create(cfg.Device);
        Directory.CreateDirectory(dir);
        using var session = new TrainSession(cfg, device);
        Console.WriteLine(weights != null ? PretrainedWeights.Load(session.Model.Backbone, weights)
            : $"pretrained backbone: none (model.pretrained={(cfg.Model.Pretrained.Length == 0 ? "\"\"" : cfg.Model.Pretrained)}), training from scratch");
        Console.WriteLine($"model: {cfg.Model.Backbone} + {cfg.Model.Head} heads, {session.Model.ParameterCount():N0} parameters" +
                          (session.Ccr != null ? $", CCR with {session.Ccr.ProjectorCount} projector(s)" : ", no CCR"));
        Console.WriteLine($"data: {cfg.Data.Dataset} ({session.TrainSet.Count} train / {session.ValSet.Count} val), " +
                          $"{session.Loader.BatchesPerEpoch} steps per epoch, {session.TotalSteps} steps; run folder {dir}");
        var trainer = new Trainer(session, dir);
        if (resume) trainer.Resume();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            Console.WriteLine("Ctrl-C: finishing the current step and writing last.ckpt ...");
            trainer.RequestStop();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            trainer.Run();
        }
        catch (OutOfMemoryException e)
        {
            Console.Error.WriteLine($"out of device memory with batch size {cfg.Train.BatchSize} and crops of " +
                $"{cfg.Data.CropHeight}x{cfg.Data.CropWidth}: {e.Message}\nTry --set train.batch_size={Math.Max(1, cfg.Train.BatchSize / 2)} " +
                "or smaller data.crop_height / data.crop_width.");
            return 3;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        if (printTable && trainer.LastEval != null)
            ResultsTable.Print(trainer.LastEval, dir, ChanceLevels.Compute(session.ValSet, cfg.Tasks));
        return 0;
    }
}
