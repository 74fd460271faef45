using Ccr.Train.Cli;
using Ccr.Training.Config;


namespace Ccr.Train.Commands;

/// <summary>
/// The one-command demo (no arguments): SynthRooms with CCR on, HRNet-W18-small-v2 on a GPU when one
/// exists, else the CPU preset (small backbone, 48x64 images) sized to finish in minutes on 2 cores.
/// </summary>
public static class DemoCommand
{
    public static readonly Args.Option[] Options =
    [
        new("out", "run folder (default: runs/<preset>, or runs/<preset>-2, -3, ... when that holds a run)"),
        new("device", "cuda, cpu or auto"),
        new("set", "override a config key of the preset", Repeatable: true),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("demo", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train [demo] [options]",
                "Generates SynthRooms (cached under data/), trains a multi-task model with cross-task\n" +
                "contrastive regularisation, evaluates it and prints the results. Uses the synth-gpu preset\n" +
                "on a CUDA device, else synth-cpu.", Options));
            return 0;
        }
        string choice = a.Get("device") ?? Environment.GetEnvironmentVariable("CCR_DEVICE") ?? "auto";
        bool gpu;
        using (var probe = CommandDevice.Open(choice, verbose: false)) gpu = probe.IsCuda;
        string preset = gpu ? "synth-gpu" : "synth-cpu";
        var sets = a.All("set").ToList();
        if (a.Get("device") is string dev) sets.Add("device=" + dev);
        var cfg = ConfigLoader.Load(preset, sets);
        Console.WriteLine($"Ccr demo: preset {preset} ({(gpu ? "GPU" : "CPU")}), tasks {string.Join(", ", cfg.Tasks)}, CCR {(cfg.Ccr.Enabled ? "on" : "off")}");
        // running the demo again starts a fresh numbered folder rather than touching the last run
        string? outDir = a.Get("out");
        return TrainCommand.TrainAndReport(cfg, outDir ?? RunFolder.Fresh(Path.Combine("runs", cfg.Name)), resume: false, numbered: outDir == null);
    }
}
