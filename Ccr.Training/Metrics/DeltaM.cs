using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// Multi-task gain of Maninis et al. 2019, as MTI-Net's code computes it:
/// Δm = 100 / T Σ_i (-1)^{l_i} (M_mt,i - M_st,i) / M_st,i over the tasks present in both results,
/// with M_i the task's main metric (<see cref="TaskInfo.MainMetric"/>: mIoU, rmse, mean angle,
/// odsF, maxF) and l_i = 1 where lower is better (depth rmse, normals mean). In percent.
/// The default compares saliency by maxF (beta² = 0.3, ATRC / InvPT); MTL's
/// calculate_multi_task_performance compares it by its saliency mIoU: pass
/// <see cref="TaskInfo.MainMetricMtl"/> as <c>mainMetric</c> for that protocol.
/// </summary>
public static class DeltaM
{
    public static double Compute(
        IReadOnlyDictionary<string, Dictionary<string, double>> multiTask,
        IReadOnlyDictionary<string, Dictionary<string, double>> singleTask,
        IEnumerable<string>? tasks = null, Func<string, string>? mainMetric = null)
    {
        mainMetric ??= TaskInfo.MainMetric;
        var list = (tasks ?? multiTask.Keys.Where(singleTask.ContainsKey)).ToList();
        if (list.Count == 0) throw new ArgumentException("Δm: no task is in both the results and the baseline");
        double sum = 0;
        foreach (string task in list)
        {
            string key = mainMetric(task);
            double mt = Get(multiTask, task, key, "results"), st = Get(singleTask, task, key, "baseline");
            if (st == 0 || !double.IsFinite(st)) throw new ArgumentException($"Δm: baseline {task}.{key} = {st} cannot be divided by");
            double rel = (mt - st) / st;
            sum += TaskInfo.LowerIsBetter(task) ? -rel : rel;
        }
        return 100.0 * sum / list.Count;
    }

    private static double Get(IReadOnlyDictionary<string, Dictionary<string, double>> r, string task, string key, string what)
    {
        if (!r.TryGetValue(task, out var m)) throw new ArgumentException($"Δm: the {what} have no task '{task}'");
        if (!m.TryGetValue(key, out double v)) throw new ArgumentException($"Δm: the {what} have no '{key}' for '{task}'");
        return v;
    }
}
