using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Training.Config;
using Ccr.Training.MultiTask;
using Ccr.Training;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench report --out DIR</c>: our side of the GPU report (tools/gpu_report.sh runs it, then
/// PyTorch's side, then <c>report-table</c>). Writes DIR/cases.json (the kernel cases, which
/// tools/torch_baseline.py times too), DIR/data/nyud-synthetic (the step's batch, which
/// tools/torch_step_baseline.py reads too) and DIR/ours.json (or --results NAME), saved after every
/// row so that a run stopped by a time limit keeps what it measured. tools/gpu_report.sh runs the
/// kernels and the step as two processes (ours_kernels.json, ours_step.json), so that a CUDA fault
/// in one cannot take the other's rows with it. Parts: model (parameter counts), kernels (with
/// the CCR pair), step. Each row's failure is recorded and the next row runs.
/// </summary>
public static class ReportCommand
{
    const string Help = """
        usage: Ccr.Bench report --out DIR [--results NAME] [--dry] [--parts model,kernels,step] [--only TEXT] [--batch N]
                                [--size HxW] [--steps N] [--cupti LIBCUPTI] [--set key=value ...]
          --out     folder for cases.json, the results, data/ and step-runs/ (created)
          --results file name of the results in --out (default ours.json; report-table reads ours*.json)
          --dry     tiny shapes and few repetitions: checks the wiring on a CPU, times nothing useful
          --parts   which parts to run (default: all)
          --only    kernel cases whose id contains one of these comma-separated texts (e.g. conv.branch,.tf32)
          --batch   training-step batch (default 4; --dry: 2)
          --size    training-step image size (default 480x640; --dry: 64x96)
          --steps   timed training steps per configuration (default 10; --dry: 2)
          --set     a config override of the step's model (repeatable; e.g. model.fpn_channels=64, ccr.min_anchors=192)
          --cupti   path of libcupti.so: count CUDA driver calls (launches) in one extra step
        """;

    public static int Run(string[] args)
    {
        string? outDir = null, cupti = null, only = null;
        string results = "ours.json";
        bool dry = false;
        var parts = new HashSet<string> { "model", "kernels", "step" };
        int? batch = null, steps = null, height = null, width = null;
        var sets = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--help" or "-h": Console.WriteLine(Help); return 0;
                    case "--out": outDir = Next(); break;
                    case "--results":
                        results = Next();
                        if (!results.StartsWith("ours") || !results.EndsWith(".json") || results.Contains('/'))
                            throw new ArgumentException($"--results wants a file name ours*.json (report-table reads those), got '{results}'");
                        break;
                    case "--dry": dry = true; break;
                    case "--cupti": cupti = Next(); break;
                    case "--only": only = Next(); break;
                    case "--parts":
                        parts = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
                        foreach (var p in parts)
                            if (p is not ("model" or "kernels" or "step")) throw new ArgumentException($"unknown part '{p}' (model, kernels, step)");
                        break;
                    case "--set": sets.Add(Next()); break;
                    case "--batch": batch = PositiveInt(Next(), "--batch"); break;
                    case "--steps": steps = PositiveInt(Next(), "--steps"); break;
                    case "--size":
                        var hw = Next().ToLowerInvariant().Split('x');
                        if (hw.Length != 2) throw new ArgumentException($"--size wants HxW, got '{args[i]}'");
                        (height, width) = (PositiveInt(hw[0], "--size"), PositiveInt(hw[1], "--size"));
                        break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
            catch (ArgumentException e) { Console.Error.WriteLine($"report: {e.Message}\n{Help}"); return 2; }
        }
        if (outDir == null) { Console.Error.WriteLine($"report: --out is required\n{Help}"); return 2; }
        Directory.CreateDirectory(outDir);

        var plan = dry ? TimingPlan.Dry : TimingPlan.Gpu;
        var file = new ResultFile { Side = "ours" };
        string oursPath = Path.Combine(outDir, results);
        void Done(ResultRow r)
        {
            file.Results.Add(r);
            file.Save(oursPath);
            string what = r.Ms is double ms ? $"{ms,11:F4} ms" : r.Status;
            Console.WriteLine($"  {r.Id,-46} {what}");
        }

        var total = Stopwatch.StartNew();
        using var d = Device.Create(verbose: true);
        file.Meta["device"] = d.ToString();
        file.Meta["dry"] = dry ? "true" : "false";
        file.Meta["tf32"] = d.IsCuda ? "tensor cores (mma.sync m16n8k8) in conv and GEMM"
                                     : "none on this device: its conv and GEMM compute fp32, so TF32 rows time fp32 code";
        // Under tiered compilation the host code (autograd, CPU variants' SIMD loops) runs unoptimised
        // for its first calls and is promoted only after a quiet spell without new JIT work, which a
        // report that keeps meeting new code never has: measured here, a CPU cross-entropy ran 30x
        // slower after 60 other cases. tools/gpu_report.sh sets DOTNET_TieredCompilation=0.
        file.Meta["tiered_compilation"] = Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") == "0"
            ? "off (DOTNET_TieredCompilation=0)" : "ON: host code may be timed before the JIT optimises it; set DOTNET_TieredCompilation=0";
        file.Meta["timing"] = $"median of {plan.Samples} synchronised samples after {plan.Warmup} warm-up calls; " +
                              $"each sample repeats the op to ~{plan.TargetMs} ms (at most {plan.MaxInner} calls)";
        file.Save(oursPath);

        var (modelParams, totalParams) = ParameterCounts();
        if (parts.Contains("model"))
        {
            Done(new ResultRow { Id = "model.parameters", Part = "model", What = "parameters: HRNet-W18-small-v2 + FPN 256 + Semantic FPN 128 x 3 tasks", Extra = { ["parameters"] = modelParams } });
            Done(new ResultRow { Id = "model.parameters_ccr", Part = "model", What = "parameters with the 3 CCR projectors", Extra = { ["parameters"] = totalParams } });
        }

        if (parts.Contains("kernels"))
        {
            Console.WriteLine($"kernels ({(dry ? "dry: tiny shapes" : "paper shapes")}):");
            var cases = KernelCases.For(dry, adamParameters: dry ? 100_000 : totalParams)
                .Where(c => only == null || only.Split(',').Any(o => c.Id.Contains(o, StringComparison.Ordinal))).ToList();
            KernelCases.Save(Path.Combine(outDir, "cases.json"), cases);
            KernelRunner.Run(d, cases, plan, Done);
        }

        if (parts.Contains("step"))
        {
            int b = batch ?? (dry ? 2 : 4), h = height ?? (dry ? 64 : 480), w = width ?? (dry ? 96 : 640);
            string data = Path.Combine(outDir, "data", "nyud-synthetic");
            SyntheticNyud.Write(data, b, h, w);
            Console.WriteLine($"training steps (batch {b}, {h}x{w}, data {data}):");
            CudaApiCounter? counter = null;
            string why = "not a CUDA device";
            if (d.IsCuda) counter = CudaApiCounter.TryCreate(cupti, out why);
            file.Meta["launch_counter"] = counter != null ? $"CUPTI ({cupti})" : why;
            try
            {
                new StepBench(d, outDir, data, b, plan, steps ?? (dry ? 2 : 10), counter, Done, () => file.Save(oursPath), sets).Run();
            }
            finally { counter?.Dispose(); }
        }
        file.Meta["seconds"] = total.Elapsed.TotalSeconds.ToString("F1");
        file.Save(oursPath);
        int failed = file.Results.Count(r => r.Status.StartsWith("FAIL"));
        Console.WriteLine($"report: {file.Results.Count} rows, {failed} failed, {total.Elapsed.TotalSeconds:F1} s; wrote {oursPath}");
        return failed == 0 ? 0 : 1;
    }

    static int PositiveInt(string s, string what) =>
        int.TryParse(s, out int v) && v > 0 ? v : throw new ArgumentException($"{what} wants a positive integer, got '{s}'");

    /// <summary>The paper model's parameters (NYUD: semseg 40, depth 1, normals 3) without and with
    /// the CCR projectors of the nyud-hrnet18 preset, built on the CPU (no pass is run).</summary>
    public static (long Model, long WithCcr) ParameterCounts()
    {
        var cfg = ConfigLoader.Load("nyud-hrnet18", ["model.pretrained=none"]);
        using var cpu = Device.CreateCpu(KernelVariant.Cpu);
        var rng = new Rng(0);
        var specs = new[] { new TaskSpec("semseg", 40), new TaskSpec("depth", 1), new TaskSpec("normals", 3) };
        var model = new MultiTaskModel(cpu, rng, TrainSession.Backbone(cfg.Model.Backbone), DecoderKind.SemanticFpn, specs,
                                       cfg.Model.FpnChannels, cfg.Model.HeadChannels);
        var ccr = new CcrLoss(cpu, rng, cfg.Ccr,
                              specs.Select(s => (s.Name, model.Decoders[s.Name].FeatureChannels)).ToList());
        long m = model.ParameterCount(), c = ccr.ParameterCount();
        model.DisposeTensors();
        ccr.DisposeTensors();
        return (m, m + c);
    }
}
