using System.Diagnostics;
using System.Globalization;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Training;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench step-profile</c>: where the paper model's CPU training step spends its time, op by op
/// (<see cref="OpProfile"/>): forward and backward milliseconds per op group (convolutions by shape),
/// averaged over the profiled steps, beside the step's wall time; what no op claims (the optimiser,
/// the upload, host decisions) is the "rest" row. Same model and batch as the report's step rows
/// (<see cref="StepBench.Config"/>, with --set overrides). Meaningful on the CPU variant only.
/// </summary>
public static class StepProfile
{
    const string Help = """
        usage: Ccr.Bench step-profile [--batch N] [--size HxW] [--steps N] [--ccr] [--top N] [--set key=value ...]
          the paper preset's CPU training step (default batch 8, 96x128, 5 profiled steps after 2 warm-ups),
          op by op; --ccr with the regulariser; --top: rows printed (default 40); --set: config overrides
        """;

    public static int Run(string[] args)
    {
        int batch = 8, height = 96, width = 128, steps = 5, top = 40;
        bool ccr = false;
        var sets = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--help" or "-h": Console.Write(Help); return 0;
                    case "--batch": batch = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--steps": steps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--top": top = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--ccr": ccr = true; break;
                    case "--set": sets.Add(Next()); break;
                    case "--size":
                        var hw = Next().ToLowerInvariant().Split('x');
                        (height, width) = (int.Parse(hw[0], CultureInfo.InvariantCulture), int.Parse(hw[1], CultureInfo.InvariantCulture));
                        break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
            {
                Console.Error.WriteLine($"step-profile: {e.Message}\n{Help}");
                return 2;
            }
        }
        if (batch < 1 || steps < 1 || height < 32 || width < 32) { Console.Error.WriteLine($"step-profile: sizes out of range\n{Help}"); return 2; }

        string dir = Path.Combine(Path.GetTempPath(), "ccr-step-profile-" + Environment.ProcessId);
        try
        {
            string data = Path.Combine(dir, "data", "nyud-synthetic");
            SyntheticNyud.Write(data, batch, height, width);
            var cfg = StepBench.Config(data, batch, ccr, "fp32", graph: false, sets);
            using var d = Device.Create("cpu", verbose: false);
            using var session = new TrainSession(cfg, d);
            var trainer = new Trainer(session, Path.Combine(dir, "run"), _ => { });
            var b = session.Loader.MakeBatch(0, 0);
            for (int i = 0; i < 3; i++) trainer.TrainStep(b, 1.0, log: false); // JIT, pool fill, warm caches
            using var profile = new OpProfile();
            var wall = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
            {
                profile.Mark();
                trainer.TrainStep(b, 1.0, log: false);
            }
            d.Synchronize();
            double stepMs = wall.Elapsed.TotalMilliseconds / steps;
            Print(profile, steps, stepMs, top, $"batch {batch} x 3x{height}x{width}, CCR {(ccr ? "on" : "off")}, {cfg.Model.Backbone}, " +
                  $"FPN {cfg.Model.FpnChannels}, head {cfg.Model.HeadChannels}, {Environment.ProcessorCount} cores");
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static void Print(OpProfile p, int steps, double stepMs, int top, string what)
    {
        var rows = p.Entries.Select(kv => (Key: kv.Key, Calls: kv.Value.Calls / steps, F: kv.Value.ForwardMs / steps, B: kv.Value.BackwardMs / steps))
                            .OrderByDescending(r => r.F + r.B).ToList();
        double ops = rows.Sum(r => r.F + r.B);
        Console.WriteLine($"step-profile: {what}: {stepMs:F1} ms per step (mean of {steps}), {ops:F1} ms in ops");
        Console.WriteLine("| op (group) | calls/step | forward ms | backward ms | share of step |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var r in rows.Take(top))
            Console.WriteLine($"| {r.Key} | {r.Calls} | {r.F:F1} | {r.B:F1} | {100 * (r.F + r.B) / stepMs:F1}% |");
        var rest = rows.Skip(top).ToList();
        if (rest.Count > 0)
            Console.WriteLine($"| {rest.Count} more groups | {rest.Sum(r => r.Calls)} | {rest.Sum(r => r.F):F1} | {rest.Sum(r => r.B):F1} | {100 * rest.Sum(r => r.F + r.B) / stepMs:F1}% |");
        Console.WriteLine($"| rest (optimiser, upload, host work between ops) | | {stepMs - ops:F1} | | {100 * (stepMs - ops) / stepMs:F1}% |");
        foreach (var kind in new[] { "conv2d", "batchnorm", "resize", "matmul" })
        {
            var k = rows.Where(r => r.Key.StartsWith(kind, StringComparison.Ordinal)).ToList();
            if (k.Count > 0)
                Console.WriteLine($"  {kind}*: forward {k.Sum(r => r.F):F1} ms, backward {k.Sum(r => r.B):F1} ms ({100 * k.Sum(r => r.F + r.B) / stepMs:F0}% of the step)");
        }
    }
}
