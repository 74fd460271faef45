using Ccr.Kernels.Ops;
using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Training.Config;
using Ccr.Training;

namespace Ccr.Bench.Report;

/// <summary>
/// The paper model's training step through the public training API (TrainSession + Trainer, as
/// TrainStepBenchmarks does): the nyud-hrnet18 preset (HRNet-W18-small-v2 from scratch, FPN 256,
/// Semantic FPN 128 per task, semseg / depth / normals, Adam lr 2e-4, weight decay 1e-4, loss
/// weights 1 / 1 / 10, CCR with the paper's settings), one fixed batch of
/// <see cref="SyntheticNyud"/> samples without augmentation, CCR off and on, fp32 and TF32, with the
/// step captured as a CUDA graph (train.cuda_graph, the default), and fp32 again with plain launches
/// (ids ending in .nograph). Per
/// configuration: the median step time (each step synchronised), kernel launches per step as our
/// launch path counts them (issued by the host; a replayed graph issues none) and the kernels in
/// the captured graph, the pool's device memory after
/// the steps (the pool only grows, so this is its high-water mark: PyTorch's max_memory_reserved),
/// the parameter counts; then, after every configuration is timed and saved, the CUDA driver calls
/// (launches, copies, synchronisations, allocations) of one step of each configuration, counted by
/// CUPTI in a fresh session (a failure there cannot cost a timed row). <paramref name="saved"/> is
/// called when a row already passed to <paramref name="done"/> gains figures.
/// </summary>
public sealed class StepBench(Device d, string outDir, string dataDir, int batch, TimingPlan plan, int timedSteps,
                              CudaApiCounter? counter, Action<ResultRow> done, Action saved, IReadOnlyList<string>? sets = null)
{
    const double MaxTimedSeconds = 15;
    const int WarmupSteps = 2; // after the first step (kernel JIT, pool fill)

    public static string Id(bool ccr, string precision, bool graph = true) =>
        $"step.{(ccr ? "ccr" : "base")}.{precision}" + (graph ? "" : ".nograph");

    public void Run()
    {
        var rows = new List<ResultRow>();
        // fp32 with and without graphs first: a part stopped by its time cap keeps the comparison
        var configs = new[] { ("fp32", true), ("fp32", false), ("tf32", true) };
        foreach (var (precision, graph) in configs)
            foreach (var ccr in new[] { false, true })
            {
                var row = new ResultRow
                {
                    Id = Id(ccr, precision, graph), Part = "step", Precision = precision,
                    What = $"training step, {(ccr ? "with CCR" : "no CCR")}{(graph ? "" : ", CUDA graph off")}",
                };
                rows.Add(row);
                try { Measure(row, ccr, precision, graph); }
                catch (Exception e) { row.Status = ResultRow.Fail(e); }
                finally { d.Pool.ReleaseCached(); }
                done(row);
            }
        if (counter == null) return;
        foreach (var row in rows.Where(r => r.Ok))
        {
            try { CountCalls(row, counter); }
            catch (Exception e) { row.Extra.Remove("launches"); Console.WriteLine($"  launch count of {row.Id} failed: {ResultRow.Fail(e)}"); }
            finally { d.Pool.ReleaseCached(); }
            saved();
        }
    }

    /// <summary>The driver calls of one step of the row's configuration, after one uncounted step
    /// (which fills the freshly emptied pool; kernels are already compiled).</summary>
    void CountCalls(ResultRow row, CudaApiCounter counter)
    {
        var cfg = Config(dataDir, batch, row.Id.StartsWith("step.ccr."), row.Precision, graph: !row.Id.EndsWith(".nograph"), sets);
        string runDir = Path.Combine(outDir, "step-runs", row.Id + ".count");
        Directory.CreateDirectory(runDir);
        using var session = new TrainSession(cfg, d);
        var trainer = new Trainer(session, runDir, _ => { });
        var b = session.Loader.MakeBatch(0, 0);
        for (int i = 0; i < 3; i++) trainer.TrainStep(b, 1.0, log: false); // eager, then captured and replayed when graphs are on
        d.Synchronize();
        var c = counter.Count(() => { trainer.TrainStep(b, 1.0, log: false); d.Synchronize(); });
        row.Extra["launches"] = c.Launches;
        row.Extra["graph_launches"] = c.GraphLaunches;
        row.Extra["copies"] = c.Copies;
        row.Extra["memsets"] = c.Memsets;
        row.Extra["syncs"] = c.Syncs;
        row.Extra["allocs"] = c.Allocs;
        Console.WriteLine($"  {row.Id}: {c.Launches} launches, {c.GraphLaunches} graph launches, {c.Copies} copies, " +
                          $"{c.Memsets} memsets, {c.Syncs} synchronisations, {c.Allocs} allocations per step");
    }

    /// <summary>Null when the timed steps ran as asked, else the row's failed status: with graphs
    /// requested on a CUDA device every timed step must be a replay (a step that fell back to plain
    /// launches would be timed as a graph's and compared with PyTorch as one). The CPU variant has
    /// no graphs, so nothing is demanded there.</summary>
    public static string? ReplayVerdict(bool graphRequested, bool cuda, int timedSteps, long replays, string? disabledBecause)
    {
        if (!graphRequested || !cuda || timedSteps == 0 || replays >= timedSteps) return null;
        return ResultRow.OneLine($"FAIL: {timedSteps - replays} of {timedSteps} timed steps were not replayed from a CUDA graph, " +
                                 (disabledBecause != null ? $"graphs off: {disabledBecause}" : "although graphs were requested"));
    }

    /// <summary>The config of one row: the paper preset on the synthetic batch, then <paramref name="sets"/>
    /// (report's --set, e.g. model.fpn_channels=64 or ccr.min_anchors=192, to match another side's model).</summary>
    public static TrainConfig Config(string dataDir, int batch, bool ccr, string precision, bool graph = true, IReadOnlyList<string>? sets = null)
    {
        return ConfigLoader.Load("nyud-hrnet18",
        [
            $"data.path={dataDir}", "data.augment=false", "data.workers=1", $"train.batch_size={batch}",
            $"ccr.enabled={(ccr ? "true" : "false")}", "model.pretrained=none", $"train.precision={precision}",
            $"train.cuda_graph={(graph ? "true" : "false")}", .. sets ?? [],
        ]);
    }

    void Measure(ResultRow row, bool ccr, string precision, bool graph)
    {
        var cfg = Config(dataDir, batch, ccr, precision, graph, sets);
        d.Pool.ReleaseCached();
        long baseline = d.Pool.BytesInUse;
        string runDir = Path.Combine(outDir, "step-runs", row.Id);
        Directory.CreateDirectory(runDir);
        var build = Stopwatch.StartNew();
        using var session = new TrainSession(cfg, d);
        var trainer = new Trainer(session, runDir, _ => { });
        var b = session.Loader.MakeBatch(0, 0);
        row.Shape = $"{b.N}x3x{b.Height}x{b.Width}";
        row.Extra["parameters_model"] = session.Model.ParameterCount();
        row.Extra["parameters_total"] = session.Root.ParameterCount();
        double buildS = build.Elapsed.TotalSeconds;

        var first = Stopwatch.StartNew();
        long launches0 = d.Launches.Count;
        trainer.TrainStep(b, 1.0, log: false); // kernel JIT, pool fill (always eager)
        d.Synchronize();
        row.Extra["first_step_s"] = first.Elapsed.TotalSeconds;
        row.Extra["launches_eager"] = d.Launches.Count - launches0;
        row.Extra["build_s"] = buildS;
        // timed steps stop early past MaxTimedSeconds (at least 3 samples): a slow draft kernel must
        // not eat the GPU session's minutes
        var samples = new List<double>();
        var timed = Stopwatch.StartNew();
        // with graphs the first warm-up step is captured; then every step is a replay
        int warmup = Math.Min(plan.Warmup, WarmupSteps);
        long launchesTimed = 0, replays = 0;
        for (int i = 0; i < warmup + timedSteps; i++)
        {
            if (i == warmup) timed.Restart();
            long before = d.Launches.Count;
            var sw = Stopwatch.StartNew();
            trainer.TrainStep(b, 1.0, log: false);
            d.Synchronize();
            if (i >= warmup)
            {
                samples.Add(sw.Elapsed.TotalMilliseconds);
                launchesTimed += d.Launches.Count - before;
                if (trainer.LastStepMode == StepMode.Replayed) replays++;
            }
            if (samples.Count >= 3 && timed.Elapsed.TotalSeconds > MaxTimedSeconds) break;
        }
        row.Extra["timed_steps"] = samples.Count;
        row.Extra["launches_issued"] = (double)launchesTimed / samples.Count;
        row.Extra["graph_replays"] = (double)replays / samples.Count;
        if (session.Graphs is { KernelsPerGraph: > 0 } g) row.Extra["kernels_per_graph"] = g.KernelsPerGraph;
        Console.WriteLine($"  {row.Id}: " + (replays > 0
            ? $"{(double)replays / samples.Count:G3} graph launch of {session.Graphs!.KernelsPerGraph} kernels per step ({row.Extra["launches_eager"]} launches eagerly)"
            : $"{row.Extra["launches_issued"]:F0} kernel launches per step" +
              (graph && d.IsCuda ? $" (graphs {(session.Graphs?.DisabledBecause is { } why ? "off: " + why : "not replayed")})" : "") +
              (d.Variant == KernelVariant.Cpu ? " (the CPU variant's host-code ops are not launches)" : "")));
        row.Ms = Timing.Median(samples);
        if (ReplayVerdict(graph, d.IsCuda, samples.Count, replays, session.Graphs?.DisabledBecause) is { } fail) row.Status = fail;
        row.Extra["min_ms"] = samples.Min();
        row.Extra["peak_pool_mib"] = (d.Pool.BytesInUse + d.Pool.BytesCached - baseline) / 1048576.0;
        row.Extra["images_per_s"] = b.N / (row.Ms.Value / 1e3);
    }
}
