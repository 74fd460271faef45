using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Kernels;
using Ccr.Training.Config;
using Ccr.Training;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench launches</c>: kernel launches per training step of the paper model (the
/// nyud-hrnet18 preset of the step benchmark: HRNet-W18-small-v2, FPN, semseg / depth / normals),
/// CCR off and on, fp32 and TF32, counted on the CPU through the CUDA variant, without running a
/// kernel: each step runs as an emulated capture (<see cref="LaunchLog.CountWithoutRunning"/>), so
/// it costs only host work at the paper's own batch and image size, and the count is the number of
/// kernels a captured CUDA graph of that step holds (or the launches a step without graphs issues).
/// </summary>
/// <remarks>
/// Launches do depend on the shape in one way: the GEMM tile chooser splits K (one more launch,
/// the ordered sum) when a GEMM's tiles cannot fill the device, which depends on the pixels per
/// image and on the number of SMs. So the count runs at the real shape (default batch 4, 480x640,
/// as the GPU report's step) on a device created to plan for the SMs of the card (default 132, an
/// H100 SXM or H200; <see cref="Device.Multiprocessors"/>): its GEMMs split K as that card's would
/// (any grid runs on the CPU accelerator, and the counted steps run nothing). CCR's random task
/// pairs change which kernels run from step to step: several steps are counted and each is printed.
/// </remarks>
public static class LaunchCount
{
    public sealed record Row(string Id, bool Ccr, string Precision, int Step, long Launches, long SplitSums, int Kernels, List<(string Kernel, int Count)> PerKernel);

    public static int Run(string[] args)
    {
        int batch = 4, height = 480, width = 640, steps = 3, sms = 132;
        string? json = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"launches: {args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--batch": batch = Positive(Next(), "--batch"); break;
                    case "--height": height = Positive(Next(), "--height"); break;
                    case "--width": width = Positive(Next(), "--width"); break;
                    case "--steps": steps = Positive(Next(), "--steps"); break;
                    case "--sms": sms = Positive(Next(), "--sms"); break;
                    case "--json": json = Next(); break;
                    default: throw new ArgumentException($"launches: unknown argument '{args[i]}'");
                }
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message + " (usage: Ccr.Bench launches [--batch N] [--height H] [--width W] [--steps S] [--sms N] [--json FILE])");
                return 2;
            }
        }
        string root = Path.Combine(Path.GetTempPath(), "ccr-launches-" + Guid.NewGuid().ToString("N"));
        try
        {
            string data = Path.Combine(root, "data");
            SyntheticNyud.Write(data, batch, height, width);
            using var d = Device.CreateCpu(KernelVariant.Cuda, planMultiprocessors: sms);
            Console.WriteLine($"kernel launches per training step of the paper model (nyud-hrnet18), batch {batch}, {height}x{width}, " +
                              $"CUDA variant on the CPU, tile choice for {sms} SMs, no kernel run:");
            var rows = new List<Row>();
            foreach (var precision in new[] { "fp32", "tf32" })
                foreach (var ccr in new[] { false, true })
                {
                    var cfg = StepBench.Config(data, batch, ccr, precision, graph: false);
                    rows.AddRange(Count(d, cfg, Path.Combine(root, "run"), steps, StepBench.Id(ccr, precision)));
                }
            foreach (var g in rows.GroupBy(r => r.Id))
            {
                var counts = g.Select(r => r.Launches).ToList();
                string span = counts.Min() == counts.Max() ? $"{counts[0]}" : $"{counts.Min()}-{counts.Max()} (steps: {string.Join(", ", counts)})";
                Console.WriteLine($"  {g.Key,-16} {span,8} launches per step ({g.First().SplitSums} split-K sums, {g.First().Kernels} distinct kernels)");
            }
            if (json != null)
            {
                var recs = rows.Select(r => new Dictionary<string, object>
                {
                    ["id"] = r.Id, ["ccr"] = r.Ccr, ["precision"] = r.Precision, ["step"] = r.Step, ["launches"] = r.Launches,
                    ["split_sums"] = r.SplitSums, ["batch"] = batch, ["height"] = height, ["width"] = width, ["sms"] = sms,
                    ["per_kernel"] = r.PerKernel.ToDictionary(k => k.Kernel, k => k.Count),
                });
                File.WriteAllText(json, JsonSerializer.Serialize(recs, new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The launches of <paramref name="steps"/> consecutive training steps of
    /// <paramref name="cfg"/> on <paramref name="d"/> (the CUDA variant), counted without running
    /// them, with the tile chooser planning for the device's <see cref="Device.Multiprocessors"/>
    /// and every conv and GEMM at the config's precision (the session sets it on its model). The
    /// first step is counted too: it issues the same launches (kernel loading and pool growth are
    /// host work).</summary>
    public static List<Row> Count(Device d, TrainConfig cfg, string runDir, int steps, string id)
    {
        if (d.Variant != KernelVariant.Cuda) throw new ArgumentException("launch count: the CUDA variant's launches are counted (the CPU variant computes on the host)");
        var rows = new List<Row>();
        try
        {
            using var session = new TrainSession(cfg, d);
            var trainer = new Trainer(session, runDir, _ => { });
            var b = session.Loader.MakeBatch(0, 0);
            for (int k = 0; k < steps; k++)
            {
                var perKernel = d.Launches.CountWithoutRunning(() => trainer.TrainStep(b, 1.0, log: false));
                long total = perKernel.Sum(p => (long)p.Count);
                long sums = perKernel.Where(p => p.Kernel.Contains("SplitSum", StringComparison.Ordinal)).Sum(p => (long)p.Count);
                rows.Add(new Row(id, cfg.Ccr.Enabled, cfg.Train.Precision.ConfigWord(), k, total, sums, perKernel.Count, perKernel));
            }
        }
        finally { d.Pool.ReleaseCached(); }
        return rows;
    }

    static int Positive(string s, string name) =>
        int.TryParse(s, out int v) && v > 0 ? v : throw new ArgumentException($"launches: {name} must be a positive integer, got '{s}'");
}
