using Ccr.Train.Data;

namespace Ccr.Train.Training;

/// <summary>The closing table of a run: every task's metrics, and where the files are.</summary>
public static class ResultsTable
{
    public static void Print(Dictionary<string, Dictionary<string, double>> metrics, string dir,
                             IReadOnlyDictionary<string, double>? chance = null)
    {
        Console.WriteLine();
        Console.WriteLine($"{"task",-12} {"metric",-10} {"value",10}");
        Console.WriteLine(new string('-', 34));
        foreach (var (task, m) in metrics)
        {
            string main = TaskInfo.MainMetric(task);
            foreach (var (k, v) in m.OrderBy(kv => kv.Key == main ? 0 : 1))
                Console.WriteLine($"{(k == main ? task : ""),-12} {k,-10} {v,10:F4}");
        }
        if (chance is { Count: > 0 })
            Console.WriteLine("for comparison, a model that learned nothing: " + string.Join(", ",
                chance.Select(kv => $"{kv.Key} {kv.Value:F4}")) + " (majority class / mean depth)");
        Console.WriteLine();
        Console.WriteLine($"run folder: {Path.GetFullPath(dir)}");
        Console.WriteLine("  config.yaml, metrics.csv, eval.json, last.ckpt, best.ckpt" +
                          (Directory.Exists(Path.Combine(dir, "plots")) ? ", plots/*.png" : ""));
    }
}
