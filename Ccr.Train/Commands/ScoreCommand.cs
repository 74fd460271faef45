using System.Text.Json;
using System.Text.Json.Serialization;
using Ccr.Training.Data;
using Ccr.Training.Metrics;

using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary>
/// <c>score</c>: evaluates saved predictions (DIR/&lt;task&gt;/&lt;id&gt;.png|npy, see
/// <see cref="PredictionWriter"/>) against a dataset's labels with the metrics of docs/guide/PROTOCOLS.md and
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
                               index, grayscale or palette PNG read as raw indices like PIL;
                               normals: RGB 255*(n+1)/2, or <id>.npy (H,W,3); sal, edge:
                               255*probability) and DIR/depth/<id>.npy or <id>.mat (variable
                               'depth', as Multi-Task-Learning-PyTorch saves it), in metres.
                               An image whose label of a task has no valid pixel (e.g. PASCAL
                               human parts without persons) is not scored for it and needs no file
          --tasks LIST         comma-separated tasks to score (semseg, depth, normals, edge, sal,
                               human_parts); default: every task of the dataset with a folder in DIR
          --resize             resize predictions of another size to the label's (nearest for
                               class indices, bilinear for depth, normals, sal, edge); without it
                               a prediction of another size is an error
          --baseline FILE      eval.json of single-task results; adds "delta_m" (percent) over the
                               scored tasks present in it, and "delta_m_mtl" (saliency compared by
                               mIoU_mtl, as Multi-Task-Learning-PyTorch) when sal is scored
          --split NAME         split to score (default: val)
          --out FILE           where to write eval.json (default: DIR/eval.json)
          --skip-bad           skip samples with missing or corrupt label files (counted) instead
                               of stopping at the first one
          --help               this text

        Saliency is reported under both protocols: maxF (ATRC / InvPT, beta^2 = 0.3) and
        maxF_mtl, mIoU_mtl (Multi-Task-Learning-PyTorch's eval_sal, beta = 1). docs/guide/PROTOCOLS.md
        says which protocol every number follows.

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
        bool skipBad = false, resize = false;
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
                    case "--resize": resize = true; break;
                    default: throw new ArgumentException($"unknown option '{a}'");
                }
            }
            if (data == null || predictions == null) throw new ArgumentException("--data and --predictions are required");
            CheckDataSpec(data);
            // usage errors (2), as docs/guide/ERRORS.md says: a task name or a folder named on the command line
            if (File.Exists(predictions)) throw new ArgumentException($"--predictions '{predictions}' is a file; name the folder of predictions");
            if (!Directory.Exists(predictions)) throw new ArgumentException($"--predictions '{predictions}': folder not found");
            tasksArg?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(TaskNames.Validate).ToList();
            if (outFile != null && Directory.Exists(outFile)) throw new ArgumentException($"--out '{outFile}' is a folder; name the eval.json file to write");
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
            var result = Score(data, predictions, split, tasks, baseline, skipBad ? BadSamplePolicy.Skip : BadSamplePolicy.Stop,
                out int skipped, resize);
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
        IReadOnlyList<string>? tasks, string? baselineFile, BadSamplePolicy policy, out int skipped, bool resize = false)
    {
        CheckDataSpec(dataSpec);
        if (!Directory.Exists(predictions)) throw new DataFileException(predictions, "prediction folder not found");
        var info = DatasetInfo.ByName(dataSpec[..dataSpec.IndexOf(':')]);
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
            {
                // As MTL's save_model_predictions / eval_*: a label without valid pixels is not scored.
                if (!HasValidPixel(s, task)) continue;
                var pred = PredictionWriter.Read(predictions, task, s.Id, s.Height, s.Width, resize);
                // a NaN or infinite value would make the metric NaN: the file is bad, not the score
                if (pred is float[] f && Array.FindIndex(f, v => !float.IsFinite(v)) is var bad and >= 0)
                    throw new DataFileException(PredictionWriter.PathFor(predictions, task, s.Id),
                        $"prediction holds a non-finite value ({f[bad]} at element {bad}); cannot be scored");
                metrics.Update(task, pred, s);
            }
        }
        var computed = metrics.Compute();
        var result = new Dictionary<string, object>();
        foreach (var (task, m) in computed) result[task] = m;
        if (baselineFile != null)
        {
            var baseline = EvalFiles.Read(baselineFile);
            result["delta_m"] = DeltaM.Compute(computed, baseline, chosen);
            if (chosen.Contains(TaskNames.Saliency))
                result["delta_m_mtl"] = DeltaM.Compute(computed, baseline, chosen, TaskInfo.MainMetricMtl);
        }
        return result;
    }

    /// <summary>A KIND:PATH of a known kind and a non-empty path, else a usage error (exit code 2).</summary>
    public static void CheckDataSpec(string spec)
    {
        int colon = spec.IndexOf(':');
        string kind = colon > 0 ? spec[..colon] : "";
        if (colon <= 0 || colon == spec.Length - 1 || kind is not ("nyud" or "pascal" or "synth"))
            throw new ArgumentException($"--data '{spec}': expected nyud:PATH, pascal:PATH or synth:PATH");
    }

    /// <summary>Does the sample's label of the task have a pixel that a metric counts?</summary>
    public static bool HasValidPixel(Sample s, string task)
    {
        switch (task)
        {
            case TaskNames.Depth: return s.Depth!.Any(v => v > 0 && v != Sample.Ignore);
            case TaskNames.Normals:
            {
                var n = s.Normals!;
                int p = s.Pixels;
                for (int i = 0; i < p; i++)
                {
                    float x = n[i], y = n[p + i], z = n[2 * p + i];
                    if ((x != 0 || y != 0 || z != 0) && x != Sample.Ignore && y != Sample.Ignore && z != Sample.Ignore) return true;
                }
                return false;
            }
            case TaskNames.Edge: return s.Edge!.Any(v => v != Sample.Ignore);
            default:
                var l = (int[])s.Label(task)!;
                return l.Any(v => v != Sample.Ignore);
        }
    }

    public static void Write(string path, Dictionary<string, object> result)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(result, Json));
    }
}
