using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// An accumulator of one task's metrics over a dataset: <see cref="Update"/> once per image with
/// the prediction at the label's resolution, <see cref="Compute"/> at the end. Units: ratios
/// (mIoU, pixAcc, maxF, odsF, delta thresholds, shares of normals under an angle) in [0, 1],
/// angles in degrees, depth in metres. Predictions: semseg / human_parts int[] (H, W) class
/// indices; depth float[] (H, W) metres; normals float[] (3, H, W) (any length, normalised
/// here); edge and sal float[] (H, W) probabilities.
/// </summary>
public interface ITaskMetric
{
    string Task { get; }
    void Update(object prediction, Sample label);
    Dictionary<string, double> Compute();
    /// <summary>A copy of the accumulators (to combine shards of a data set).</summary>
    MetricState ExportState();
    /// <summary>Replaces the accumulators with <paramref name="state"/> (same metric).</summary>
    void LoadState(MetricState state);
}

/// <summary>The metrics of several tasks, by task name, producing eval.json's nested shape.</summary>
public sealed class MetricSet
{
    private readonly Dictionary<string, ITaskMetric> _metrics = [];

    public MetricSet(DatasetInfo info, IEnumerable<string> tasks)
    {
        foreach (string t in tasks) _metrics[t] = Create(info, t);
    }

    public IReadOnlyDictionary<string, ITaskMetric> Metrics => _metrics;

    public static ITaskMetric Create(DatasetInfo info, string task) => task switch
    {
        TaskNames.Semseg or TaskNames.HumanParts => new SegmentationMetric(info.Classes(task), task),
        TaskNames.Depth => new DepthMetric(),
        TaskNames.Normals => new NormalsMetric(),
        TaskNames.Saliency => new SaliencyMetric(),
        TaskNames.Edge => new EdgeOdsMetric(info.EdgeMaxDist),
        _ => throw new ArgumentException($"unknown task '{task}'"),
    };

    public void Update(string task, object prediction, Sample label) => _metrics[task].Update(prediction, label);

    public Dictionary<string, Dictionary<string, double>> Compute() =>
        _metrics.ToDictionary(kv => kv.Key, kv => kv.Value.Compute());

    /// <summary>[distributed] Combines every task's accumulators over the ranks (collective), so
    /// that <see cref="Compute"/> gives the metrics of every rank's shard together.</summary>
    public void AllReduce(Ccr.Nn.Distributed.ICommunicator comm)
    {
        if (comm.Size == 1) return;
        foreach (var (task, m) in _metrics.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var s = m.ExportState();
            s.AllReduce(comm, $"{task} metric");
            m.LoadState(s);
        }
    }
}


internal static class MetricChecks
{
    public static T[] Label<T>(T[]? label, Sample s, string task) =>
        label ?? throw new ArgumentException($"sample '{s.Id}' has no {task} label");

    public static T[] Prediction<T>(object prediction, string task) =>
        prediction as T[] ?? throw new ArgumentException(
            $"{task} prediction must be {typeof(T).Name}[], got {prediction?.GetType().Name ?? "null"}");

    public static void SameLength(int pred, int label, string task, string id)
    {
        if (pred != label)
            throw new ArgumentException($"{task} prediction of '{id}' has {pred} values, the label {label}");
    }
}
