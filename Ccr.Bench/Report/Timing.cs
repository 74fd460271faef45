using System.Diagnostics;

namespace Ccr.Bench.Report;

/// <summary>How long to time one case. The same rule is written in tools/torch_timing.py, so that
/// both sides of a ratio are measured alike.</summary>
/// <param name="Warmup">untimed calls first (kernel JIT, pool and cache fill)</param>
/// <param name="Samples">timed samples; the reported figure is their median</param>
/// <param name="TargetMs">a sample runs the op enough times back to back to last about this long
/// (latency-bound kernels of 10-50 us are then not dominated by the one synchronisation per sample)</param>
/// <param name="MaxInner">cap on the calls per sample</param>
public sealed record TimingPlan(int Warmup, int Samples, double TargetMs, int MaxInner)
{
    /// <summary>A GPU: short kernels repeated to ~2 ms per sample, median of 15.</summary>
    public static readonly TimingPlan Gpu = new(3, 15, 2.0, 200);
    /// <summary>The CPU dry run: one call per sample, median of 3 (checks the wiring, not the speed).</summary>
    public static readonly TimingPlan Dry = new(1, 3, 0, 1);

    /// <summary>Calls per sample for an op that took <paramref name="oneCallMs"/> once.</summary>
    public int InnerFor(double oneCallMs) =>
        TargetMs <= 0 || oneCallMs <= 0 ? 1 : (int)Math.Clamp(Math.Round(TargetMs / oneCallMs), 1, MaxInner);
}

/// <summary>The median time of one call of an op, synchronised with the device.</summary>
public static class Timing
{
    /// <summary>
    /// Runs <paramref name="op"/> <see cref="TimingPlan.Warmup"/> times, times one call to choose
    /// the calls per sample, then takes <see cref="TimingPlan.Samples"/> samples of that many calls
    /// followed by one <paramref name="sync"/>; returns the median milliseconds per call.
    /// </summary>
    public static double MedianMs(Action op, Action sync, TimingPlan plan)
    {
        for (int i = 0; i < plan.Warmup; i++) op();
        sync();
        var sw = Stopwatch.StartNew();
        op();
        sync();
        int inner = plan.InnerFor(sw.Elapsed.TotalMilliseconds);
        var ms = new double[plan.Samples];
        for (int s = 0; s < ms.Length; s++)
        {
            sw.Restart();
            for (int i = 0; i < inner; i++) op();
            sync();
            ms[s] = sw.Elapsed.TotalMilliseconds / inner;
        }
        return Median(ms);
    }

    public static double Median(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) throw new ArgumentException("median of no values");
        var s = xs.OrderBy(x => x).ToArray();
        int m = s.Length / 2;
        return s.Length % 2 == 1 ? s[m] : 0.5 * (s[m - 1] + s[m]);
    }
}
