using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Training.Config;
using Ccr.Training.Data;
using Ccr.Training;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// One full training step (forward of backbone and decoders, task losses, the CCR regulariser,
/// backward, the fused Adam launch) on one fixed batch of SynthRooms, for a preset's model and
/// batch size. synth-cpu is the CPU demo's (HRNet-tiny, 8 x 48x64); synth-gpu is HRNet-W18-small-v2
/// with Semantic FPN decoders at 8 x 96x128 (meant for a GPU; slow on a CPU). <see cref="Graph"/>:
/// train.cuda_graph (on a CUDA device the step is captured once and replayed; elsewhere it changes
/// nothing). The setup prints the kernel launches of one step as our launch path counts them.
/// </summary>
public class TrainStepBenchmarks
{
    [Params("synth-cpu", "synth-gpu")]
    public string Preset { get; set; } = "synth-cpu";

    [Params(true, false)]
    public bool Ccr { get; set; } = true;

    [Params(true, false)]
    public bool Graph { get; set; } = true;

    Device _d = null!;
    TrainSession _s = null!;
    Trainer _t = null!;
    Batch _batch = null!;
    string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "ccr-bench-step-" + Environment.ProcessId);
        var cfg = ConfigLoader.Load(Preset, [$"data.path={Path.Combine(_dir, "data")}", "data.train_size=16", "data.val_size=2",
                                             $"ccr.enabled={Ccr.ToString().ToLowerInvariant()}",
                                             $"train.cuda_graph={Graph.ToString().ToLowerInvariant()}"]);
        _d = Device.Create(cfg.Device.ConfigWord(), verbose: false);
        _s = new TrainSession(cfg, _d);
        _t = new Trainer(_s, Path.Combine(_dir, "run"), Console.WriteLine);
        _batch = _s.Loader.MakeBatch(0, 0);
        long before = _d.Launches.Count;
        _t.TrainStep(_batch, 1.0, log: false); // eager: kernels compile, the pool fills
        long eager = _d.Launches.Count - before;
        _t.TrainStep(_batch, 1.0, log: false); // captured when graphs apply
        before = _d.Launches.Count;
        _t.TrainStep(_batch, 1.0, log: false);
        _d.Synchronize();
        Console.WriteLine($"// launches per step ({Preset}, CCR {(Ccr ? "on" : "off")}, graph {(Graph ? "on" : "off")}, {_d.Variant} kernels): " +
            (_t.LastStepMode == StepMode.Replayed
                ? $"1 CUDA graph launch of {_s.Graphs!.KernelsPerGraph} kernels ({eager} launches eagerly)"
                : $"{_d.Launches.Count - before} kernel launches" + (_d.Variant == KernelVariant.Cpu ? " (the CPU variant's host-code ops are not launches)" : "")));
    }

    [Benchmark]
    public void TrainStep()
    {
        _t.TrainStep(_batch, 1.0, log: false);
        _d.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _s.Dispose();
        _d.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
