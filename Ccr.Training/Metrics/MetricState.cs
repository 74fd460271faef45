using Ccr.Nn.Distributed;

namespace Ccr.Training.Metrics;

/// <summary>
/// A metric's accumulators, so that metrics gathered over disjoint parts of a data set combine
/// into those of the whole: counts and sums add, minima and maxima take the extreme. Every metric
/// here accumulates sums over the whole data set (of pixels, or of per-image values with the image
/// count), so the combination equals one pass over everything: counts exactly, double sums up to
/// the order of additions.
/// </summary>
public sealed class MetricState
{
    public long[] Counts { get; init; } = [];
    public double[] Sums { get; init; } = [];
    public double[] Mins { get; init; } = [];
    public double[] Maxs { get; init; } = [];

    /// <summary>This state combined with <paramref name="other"/> (same metric), in place.</summary>
    public void Add(MetricState other)
    {
        if (other.Counts.Length != Counts.Length || other.Sums.Length != Sums.Length
            || other.Mins.Length != Mins.Length || other.Maxs.Length != Maxs.Length)
            throw new ArgumentException("metric states of different metrics");
        for (int i = 0; i < Counts.Length; i++) Counts[i] += other.Counts[i];
        for (int i = 0; i < Sums.Length; i++) Sums[i] += other.Sums[i];
        for (int i = 0; i < Mins.Length; i++) Mins[i] = Math.Min(Mins[i], other.Mins[i]);
        for (int i = 0; i < Maxs.Length; i++) Maxs[i] = Math.Max(Maxs[i], other.Maxs[i]);
    }

    /// <summary>Combines this state over every rank, in place (collective).</summary>
    public void AllReduce(ICommunicator comm, string what)
    {
        if (comm.Size == 1) return;
        if (Counts.Length > 0) comm.AllReduce(Counts, ReduceOp.Sum, what + " counts");
        if (Sums.Length > 0) comm.AllReduce(Sums, ReduceOp.Sum, what + " sums");
        if (Mins.Length > 0) comm.AllReduce(Mins, ReduceOp.Min, what + " minima");
        if (Maxs.Length > 0) comm.AllReduce(Maxs, ReduceOp.Max, what + " maxima");
    }
}
