using System.Text.Json;
using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>Reading eval.json files back: ablation tables and Δm against a single-task baseline.</summary>
public static class EvalFiles
{
    /// <summary>Reads an eval.json's per-task blocks (other top-level entries such as delta_m are skipped).</summary>
    public static Dictionary<string, Dictionary<string, double>> Read(string path)
    {
        if (!File.Exists(path)) throw new DataFileException(path, "results file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = new Dictionary<string, Dictionary<string, double>>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Object) continue;
                var m = new Dictionary<string, double>();
                foreach (var q in p.Value.EnumerateObject())
                    if (q.Value.ValueKind == JsonValueKind.Number) m[q.Name] = q.Value.GetDouble();
                r[p.Name] = m;
            }
            return r;
        }
        catch (JsonException e)
        {
            throw new DataFileException(path, $"not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>Δm (percent) of <paramref name="metrics"/> against the baseline eval.json at <paramref name="baselinePath"/>.</summary>
    public static double DeltaM(Dictionary<string, Dictionary<string, double>> metrics, string baselinePath) =>
        Metrics.DeltaM.Compute(metrics, Read(baselinePath));

    /// <summary>
    /// Checks a single-task baseline before any work is done: the file exists, is an eval.json, and
    /// holds a usable main metric (finite, non-zero) for each of <paramref name="tasks"/> it covers,
    /// covering at least one. <paramref name="what"/> names the option in the error ("--baseline").
    /// </summary>
    public static Dictionary<string, Dictionary<string, double>> CheckBaseline(string path, IReadOnlyList<string> tasks, string what)
    {
        if (!File.Exists(path)) throw new ConfigException($"{what} {path}: file not found");
        Dictionary<string, Dictionary<string, double>> b;
        try { b = Read(path); }
        catch (DataFileException e) { throw new ConfigException($"{what} {e.Message}"); }
        var covered = tasks.Where(b.ContainsKey).ToList();
        if (covered.Count == 0)
            throw new ConfigException($"{what} {path}: holds none of the tasks evaluated here ({string.Join(", ", tasks)}); it has {string.Join(", ", b.Keys)}");
        foreach (var t in covered)
        {
            string key = TaskInfo.MainMetric(t);
            if (!b[t].TryGetValue(key, out double v)) throw new ConfigException($"{what} {path}: {t} has no '{key}'");
            if (v == 0 || !double.IsFinite(v)) throw new ConfigException($"{what} {path}: {t}.{key} = {v} cannot be a baseline");
        }
        return b;
    }
}
