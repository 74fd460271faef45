using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Train.Commands;
using Ccr.Train.Config;
using Ccr.Train.Training;

namespace Ccr.Bench.Report;

/// <summary>
/// The paper model's training step through the public training API (TrainSession + Trainer, as
/// TrainStepBenchmarks does): the nyud-hrnet18 preset (HRNet-W18-small-v2 from scratch, FPN 256,
/// Semantic FPN 128 per task, semseg / depth / normals, Adam lr 2e-4, weight decay 1e-4, loss
/// weights 1 / 1 / 10, CCR with the paper's settings), one fixed batch of
/// <see cref="SyntheticNyud"/> samples without augmentation, CCR off and on, fp32 and TF32. Per
/// configuration: the median step time (each step synchronised), the pool's device memory after
/// the steps (the pool only grows, so this is its high-water mark: PyTorch's max_memory_reserved),
/// the parameter counts; then, after every configuration is timed and saved, the CUDA driver calls
/// (launches, copies, synchronisations, allocations) of one step of each configuration, counted by
/// CUPTI in a fresh session (a failure there cannot cost a timed row). <paramref name="saved"/> is
/// called when a row already passed to <paramref name="done"/> gains figures.
/// </summary>
public sealed class StepBench(Device d, string outDir, string dataDir, int batch, TimingPlan plan, int timedSteps,
                              CudaApiCounter? counter, Action<ResultRow> done, Action saved)
{
    const double MaxTimedSeconds = 15;
    const int WarmupSteps = 2; // after the first step (kernel JIT, pool fill)

    public static string Id(bool ccr, string precision) => $"step.{(ccr ? "ccr" : "base")}.{precision}";

    public void Run()
    {
        var rows = new List<ResultRow>();
        foreach (var precision in new[] { "fp32", "tf32" })
            foreach (var ccr in new[] { false, true })
            {
                var row = new ResultRow
                {
                    Id = Id(ccr, precision), Part = "step", Precision = precision,
                    What = $"training step, {(ccr ? "with CCR" : "no CCR")}",
                };
                rows.Add(row);
                try { Measure(row, ccr, precision); }
                catch (Exception e) { row.Status = ResultRow.Fail(e); }
                finally
                {
                    d.Precision = MathPrecision.Fp32;
                    d.Pool.ReleaseCached();
                }
                done(row);
            }
        if (counter == null) return;
        foreach (var row in rows.Where(r => r.Ok))
        {
            try { CountCalls(row, counter); }
            catch (Exception e) { row.Extra.Remove("launches"); Console.WriteLine($"  launch count of {row.Id} failed: {ResultRow.Fail(e)}"); }
            finally
            {
                d.Precision = MathPrecision.Fp32;
                d.Pool.ReleaseCached();
            }
            saved();
        }
    }

    /// <summary>The driver calls of one step of the row's configuration, after one uncounted step
    /// (which fills the freshly emptied pool; kernels are already compiled).</summary>
    void CountCalls(ResultRow row, CudaApiCounter counter)
    {
        var cfg = Config(dataDir, batch, row.Id.StartsWith("step.ccr."), row.Precision);
        d.Precision = TrainCommand.Precision(cfg); // as the train command sets it
        string runDir = Path.Combine(outDir, "step-runs", row.Id + ".count");
        Directory.CreateDirectory(runDir);
        using var session = new TrainSession(cfg, d);
        var trainer = new Trainer(session, runDir, _ => { });
        var b = session.Loader.MakeBatch(0, 0);
        trainer.TrainStep(b, 1.0, log: false);
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

    /// <summary>The config of one row: the paper preset on the synthetic batch.</summary>
    public static TrainConfig Config(string dataDir, int batch, bool ccr, string precision)
    {
        return ConfigLoader.Load("nyud-hrnet18",
        [
            $"data.path={dataDir}", "data.augment=false", "data.workers=1", $"train.batch_size={batch}",
            $"ccr.enabled={(ccr ? "true" : "false")}", "model.pretrained=none", $"train.precision={precision}",
        ]);
    }

    void Measure(ResultRow row, bool ccr, string precision)
    {
        var cfg = Config(dataDir, batch, ccr, precision);
        d.Precision = TrainCommand.Precision(cfg);
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
        trainer.TrainStep(b, 1.0, log: false); // kernel JIT, pool fill
        d.Synchronize();
        row.Extra["first_step_s"] = first.Elapsed.TotalSeconds;
        row.Extra["build_s"] = buildS;
        // timed steps stop early past MaxTimedSeconds (at least 3 samples): a slow draft kernel must
        // not eat the GPU session's minutes
        var samples = new List<double>();
        var timed = Stopwatch.StartNew();
        int warmup = Math.Min(plan.Warmup, WarmupSteps);
        for (int i = 0; i < warmup + timedSteps; i++)
        {
            if (i == warmup) timed.Restart();
            var sw = Stopwatch.StartNew();
            trainer.TrainStep(b, 1.0, log: false);
            d.Synchronize();
            if (i >= warmup) samples.Add(sw.Elapsed.TotalMilliseconds);
            if (samples.Count >= 3 && timed.Elapsed.TotalSeconds > MaxTimedSeconds) break;
        }
        row.Extra["timed_steps"] = samples.Count;
        row.Ms = Timing.Median(samples);
        row.Extra["min_ms"] = samples.Min();
        row.Extra["peak_pool_mib"] = (d.Pool.BytesInUse + d.Pool.BytesCached - baseline) / 1048576.0;
        row.Extra["images_per_s"] = b.N / (row.Ms.Value / 1e3);
    }
}
