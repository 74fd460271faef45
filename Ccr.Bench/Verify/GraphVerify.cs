using Ccr.Kernels;
using Ccr.Training.Config;
using Ccr.Training;

namespace Ccr.Bench.Verify;

/// <summary>
/// A few training steps of a tiny synthetic model (the small HRNet, two tasks, CCR on, both pairs)
/// run twice from the same seed: once with plain launches, once with the step captured as a CUDA
/// graph and replayed (on a CUDA device: real graphs; on the CPU accelerator's CUDA variant: the
/// emulated capture, which runs nothing while capturing and only the kept kernels on a replay).
/// Every step's total loss and every parameter afterwards must be the same bits (tolerance 0). The
/// row fails as well when no step was replayed, so a capture that silently fell back to plain
/// launches cannot pass. This is the GPU machine's check of the graphs, where there is no SDK to
/// run the test suite. The CPU variant computes on the host and has no graphs: no row there.
/// </summary>
public sealed class GraphVerify : IVerifySuite
{
    public string Family => "graph";

    const int Steps = 4; // eager (warm-up), captured, eager (a logging step), replayed

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        if (!device.IsCuda && device.Variant != KernelVariant.Cuda) yield break;
        if (device.IsCuda && small) yield break; // --small on a GPU is for compute-sanitizer: kernels, not steps
        int hw = small || !device.IsCuda ? 32 : 64;
        yield return new VerifyCase("train.step.graph-vs-plain", $"{Steps} steps, N2 {hw}x{hw}, CCR", 0, 0, d => Compare(d, hw));
    }

    static (double[], float[]) Compare(Device d, int hw)
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-verify-graph-" + Guid.NewGuid().ToString("N"));
        try
        {
            var plain = Train(d, root, hw, graph: false);
            var graphed = Train(d, root, hw, graph: true);
            CheckModes(plain.Modes, graphed.Modes, graphed.Said);
            return ([.. plain.Losses.Concat(plain.Params).Select(v => (double)v)], [.. graphed.Losses, .. graphed.Params]);
        }
        finally
        {
            try { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Throws unless the plain run was all eager and the graphed run replayed at least one
    /// step without a word from the graph runner (a capture failure or fallback is said there).</summary>
    internal static void CheckModes(IReadOnlyList<StepMode> plain, IReadOnlyList<StepMode> graphed, IReadOnlyList<string> said)
    {
        if (said.Count > 0) throw new InvalidOperationException("graphs: " + string.Join("; ", said));
        if (!graphed.Contains(StepMode.Replayed))
            throw new InvalidOperationException($"no step was replayed from a graph (modes: {string.Join(", ", graphed)})");
        if (plain.Any(m => m != StepMode.Eager))
            throw new InvalidOperationException($"train.cuda_graph=false, yet modes {string.Join(", ", plain)}");
    }

    /// <summary>The tiny run's config: 32x32 (64x64 on a GPU) SynthRooms, batch 2, the small HRNet.</summary>
    public static TrainConfig Config(string root, int hw, bool graph) => ConfigLoader.Load("synth-cpu",
    [
        "data.path=" + Path.Combine(root, "data"), "data.train_size=6", "data.val_size=2", $"data.height={hw}", $"data.width={hw}",
        $"data.crop_height={hw}", $"data.crop_width={hw}", "data.workers=1", "data.augment=false", "tasks=[semseg,depth]",
        "train.batch_size=2", "train.epochs=1", "train.eval_every=0", "train.log_every=1000", "model.head_channels=8",
        "ccr.top_k=4", "ccr.proj_dim=8", "ccr.negatives=2", "ccr.gamma=0.02", "ccr.pair_selection=all",
        $"train.cuda_graph={(graph ? "true" : "false")}",
    ]);

    static (List<float> Losses, float[] Params, List<StepMode> Modes, List<string> Said) Train(Device d, string root, int hw, bool graph)
    {
        var said = new List<string>();
        using var s = new TrainSession(Config(root, hw, graph), d);
        var t = new Trainer(s, Path.Combine(root, graph ? "graph" : "plain"), said.Add)
            { RecordStepLosses = true, EmulateCudaGraphs = !d.IsCuda };
        var modes = new List<StepMode>();
        for (int k = 0; k < Steps; k++)
        {
            t.TrainStep(s.Loader.MakeBatch(0, k % 3), 0.25 * k, log: k == 2);
            modes.Add(t.LastStepMode);
        }
        d.Synchronize();
        return (t.StepLosses, s.Arena.Values.ToArray(), modes, said);
    }
}
