using System.Text.Json;
using System.Text.Json.Serialization;
using Ccr.Train.Data;
using Ccr.Train.Metrics;

namespace Ccr.Train.Commands;

/// <summary>
/// <c>score</c>: evaluates saved predictions (DIR/&lt;task&gt;/&lt;id&gt;.png|npy, see
/// <see cref="PredictionWriter"/>) against a dataset's labels with the metrics of EVALUATION.md and
/// writes eval.json: {"semseg": {"mIoU": ..., "pixAcc": ...}, "depth": {"rmse": ...}, ...,
/// "delta_m": ...} (delta_m only with --baseline).
/// </summary>
public static class ScoreCommand
{
    public const string Help = """
        Usage: Ccr.Train score --data KIND:PATH --predictions DIR [options]

        Scores saved predictions against dataset labels and writes eval.json.

          --data KIND:PATH     dataset: nyud:PATH, pascal:PATH or synth:PATH (a SynthRooms cache
                               folder, e.g. data/synthrooms-96x128-s0-2000-300)
          --predictions DIR    prediction folder: DIR/<task>/<id>.png (semseg, human_parts: class
                               index; normals: RGB 255*(n+1)/2, or <id>.npy (H,W,3); sal, edge:
                               255*probability) and DIR/depth/<id>.npy (metres), original size
          --tasks LIST         comma-separated tasks to score (semseg, depth, normals, edge, sal,
                               human_parts); default: every task of the dataset with a folder in DIR
          --baseline FILE      eval.json of single-task results; adds "delta_m" (percent) over the
                               scored tasks present in it
          --split NAME         split to score (default: val)
          --out FILE           where to write eval.json (default: DIR/eval.json)
          --skip-bad           skip samples with missing or corrupt label files (counted) instead
                               of stopping at the first one
          --help               this text

        Exit code 0 on success, 1 on a data error, 2 on a usage error.
        """;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static int Run(string[] args)
    {
        string? data = null, predictions = null, baseline = null, outFile = null, tasksArg = null;
        string split = "val";
        bool skipBad = false;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
                switch (a)
                {
                    case "--help" or "-h": Console.WriteLine(Help); return 0;
                    case "--data": data = Next(); break;
                    case "--predictions": predictions = Next(); break;
                    case "--tasks": tasksArg = Next(); break;
                    case "--baseline": baseline = Next(); break;
                    case "--split": split = Next(); break;
                    case "--out": outFile = Next(); break;
                    case "--skip-bad": skipBad = true; break;
                    default: throw new ArgumentException($"unknown option '{a}'");
                }
            }
            if (data == null || predictions == null) throw new ArgumentException("--data and --predictions are required");
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"score: {e.Message}\n\n{Help}");
            return 2;
        }
        try
        {
            var tasks = tasksArg?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(TaskNames.Validate).ToList();
            var result = Score(data, predictions, split, tasks, baseline, skipBad ? BadSamplePolicy.Skip : BadSamplePolicy.Stop, out int skipped);
            string path = outFile ?? Path.Combine(predictions, "eval.json");
            Write(path, result);
            foreach (var (k, v) in result)
                Console.WriteLine(v is Dictionary<string, double> m
                    ? $"{k}: " + string.Join(", ", m.Select(kv => $"{kv.Key} {kv.Value:0.####}"))
                    : $"{k}: {v:0.####}");
            if (skipped > 0) Console.WriteLine($"skipped {skipped} bad samples");
            Console.WriteLine($"wrote {path}");
            return 0;
        }
        catch (Exception e) when (e is DataFileException or ArgumentException or IOException or JsonException)
        {
            Console.Error.WriteLine($"score: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Scores DIR against the dataset and returns eval.json's content: task -&gt; metric -&gt; value,
    /// plus "delta_m" -&gt; double when a baseline is given.
    /// </summary>
    public static Dictionary<string, object> Score(string dataSpec, string predictions, string split,
        IReadOnlyList<string>? tasks, string? baselineFile, BadSamplePolicy policy, out int skipped)
    {
        if (!Directory.Exists(predictions)) throw new DataFileException(predictions, "prediction folder not found");
        string kind = dataSpec.Split(':')[0];
        var info = DatasetInfo.ByName(kind);
        var chosen = tasks ?? info.AvailableTasks.Where(t => Directory.Exists(Path.Combine(predictions, t))).ToList();
        if (chosen.Count == 0)
            throw new ArgumentException($"no task folder of {info.Name} ({string.Join(", ", info.AvailableTasks)}) in {predictions}");
        var dataset = DatasetSpec.Open(dataSpec, split, chosen, policy);
        var metrics = new MetricSet(dataset.Info, chosen);
        skipped = (dataset as FolderDataset)?.Skipped.Count ?? 0;
        for (int i = 0; i < dataset.Count; i++)
        {
            Sample s;
            try { s = dataset.Get(i); }
            catch (DataFileException) when (policy == BadSamplePolicy.Skip) { skipped++; continue; }
            foreach (string task in chosen)
                metrics.Update(task, PredictionWriter.Read(predictions, task, s.Id, s.Height, s.Width), s);
        }
        var computed = metrics.Compute();
        var result = new Dictionary<string, object>();
        foreach (var (task, m) in computed) result[task] = m;
        if (baselineFile != null)
            result["delta_m"] = DeltaM.Compute(computed, ReadResults(baselineFile), chosen);
        return result;
    }

    public static void Write(string path, Dictionary<string, object> result)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(result, Json));
    }

    /// <summary>Reads an eval.json's per-task blocks (other top-level entries such as delta_m are skipped).</summary>
    public static Dictionary<string, Dictionary<string, double>> ReadResults(string path)
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
}
