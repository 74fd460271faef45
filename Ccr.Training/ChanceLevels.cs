using Ccr.Training.Data;
using Ccr.Training.Metrics;

namespace Ccr.Training;

/// <summary>
/// What a model that learned nothing scores on a dataset, scored by the same metrics: semseg and
/// parts by always predicting the most frequent class, depth by predicting the mean valid depth
/// everywhere. The demo prints these beside its results, so "it learned" is a comparison, not a
/// claim.
/// </summary>
public static class ChanceLevels
{
    public static Dictionary<string, double> Compute(IDataset data, IEnumerable<string> tasks, int? limit = null)
    {
        var r = new Dictionary<string, double>();
        int n = Math.Min(data.Count, limit ?? int.MaxValue);
        var samples = new Sample[n];
        Parallel.For(0, n, i => samples[i] = data.Get(i));
        foreach (var task in tasks)
        {
            if (TaskInfo.IsClassification(task))
            {
                int classes = data.Info.Classes(task);
                var counts = new long[classes];
                foreach (var s in samples)
                    foreach (var v in (task == TaskNames.Semseg ? s.Semseg : s.Parts)!)
                        if (v >= 0 && v < classes) counts[v]++;
                int major = Array.IndexOf(counts, counts.Max());
                var m = new SegmentationMetric(classes, task);
                foreach (var s in samples) m.Update(Enumerable.Repeat(major, s.Pixels).ToArray(), (task == TaskNames.Semseg ? s.Semseg : s.Parts)!);
                r[task + ".mIoU"] = m.Compute()["mIoU"];
            }
            else if (task == TaskNames.Depth)
            {
                double sum = 0; long count = 0;
                foreach (var s in samples)
                    foreach (var v in s.Depth!) if (v > 0) { sum += v; count++; }
                float mean = count > 0 ? (float)(sum / count) : 0f;
                var m = new DepthMetric();
                foreach (var s in samples) m.Update(Enumerable.Repeat(mean, s.Pixels).ToArray(), s.Depth!);
                r["depth.rmse"] = m.Compute()["rmse"];
            }
        }
        return r;
    }
}
