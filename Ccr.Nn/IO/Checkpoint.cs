using System.Globalization;
using Ccr.Nn.Modules;

namespace Ccr.Nn.IO;

/// <summary>Everything a run needs to resume besides the model: optimiser state (named tensors and
/// scalars, as the optimiser exports them), progress counters, RNG state, best metric and the
/// resolved configuration text.</summary>
public sealed class TrainingState
{
    public long Step { get; set; }
    public int Epoch { get; set; }
    public ulong RngState { get; set; }
    public ulong RngInc { get; set; }
    public double BestMetric { get; set; } = double.NaN;
    public string Config { get; set; } = "";
    public IReadOnlyDictionary<string, Tensor> OptimizerTensors { get; set; } = new Dictionary<string, Tensor>();
    public IReadOnlyDictionary<string, double> OptimizerScalars { get; set; } = new Dictionary<string, double>();
    /// <summary>Further metadata by name, saved as "extra.&lt;name&gt;" (the data-parallel layout:
    /// rank count, global batch, each rank's sampling RNG).</summary>
    public IReadOnlyDictionary<string, string> Extra { get; set; } = new Dictionary<string, string>();

    public Rng RestoreRng() => new(RngState, RngInc, raw: true);
}

/// <summary>
/// Checkpoints as one safetensors file: "model.&lt;name&gt;" (parameters, buffers,
/// num_batches_tracked), "optim.&lt;name&gt;" (optimiser tensors), and the scalars in the metadata.
/// Written atomically: a temporary file beside the target, flushed to disk (fsync), then renamed
/// over it, so a crash mid-write leaves the previous checkpoint whole. Loading refuses a checkpoint
/// whose model or optimiser tensors do not match, listing what differs, and changes nothing then.
/// </summary>
public static class Checkpoint
{
    public const string Format = "ccr-checkpoint";
    const string ModelPrefix = "model.", OptimPrefix = "optim.", ScalarPrefix = "optim_scalar.", ExtraPrefix = "extra.";

    /// <param name="wrapStream">Wraps the file stream (tests inject a failing stream to simulate a crash).</param>
    public static void Save(string path, Module model, TrainingState state, Func<Stream, Stream>? wrapStream = null)
    {
        var tensors = StateDict.ToHost(model, ModelPrefix);
        foreach (var (name, t) in state.OptimizerTensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            tensors.Add((OptimPrefix + name, t.DType == DType.F32
                ? HostTensor.FromFloats(t.ToArray(), t.Shape.Select(s => (long)s).ToArray())
                : HostTensor.FromInts(t.ToIntArray(), t.Shape.Select(s => (long)s).ToArray())));
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["version"] = "1",
            ["step"] = state.Step.ToString(CultureInfo.InvariantCulture),
            ["epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["rng_state"] = state.RngState.ToString(CultureInfo.InvariantCulture),
            ["rng_inc"] = state.RngInc.ToString(CultureInfo.InvariantCulture),
            ["best_metric"] = state.BestMetric.ToString("R", CultureInfo.InvariantCulture),
            ["config"] = state.Config,
        };
        foreach (var (k, v) in state.OptimizerScalars) meta[ScalarPrefix + k] = v.ToString("R", CultureInfo.InvariantCulture);
        foreach (var (k, v) in state.Extra) meta[ExtraPrefix + k] = v;

        string full = Path.GetFullPath(path);
        string tmp = full + $".tmp-{Environment.ProcessId}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var s = wrapStream?.Invoke(fs) ?? fs;
                SafeTensors.Write(s, tensors, meta);
                s.Flush();
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);  // rename(2): atomic on one file system
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>
    /// Loads model state into <paramref name="model"/> and optimiser tensors into
    /// <paramref name="optimizerTensors"/> (same names and shapes as saved), and returns the rest.
    /// Everything is checked before anything is copied.
    /// </summary>
    public static TrainingState Load(string path, Module model, IReadOnlyDictionary<string, Tensor>? optimizerTensors = null)
    {
        var file = SafeTensors.Read(path);
        if (!file.Metadata.TryGetValue("format", out var fmt) || fmt != Format)
            throw new InvalidDataException($"{path}: not a Ccr checkpoint (metadata format '{fmt ?? "none"}')");

        // the optimiser section, checked first; StateDict.Load below checks the model and copies it
        var problems = new List<string>();
        var optCopies = new List<Action>();
        var wanted = optimizerTensors ?? new Dictionary<string, Tensor>();
        foreach (var (name, t) in wanted)
        {
            if (!file.Tensors.TryGetValue(OptimPrefix + name, out var h)) { problems.Add($"missing {OptimPrefix}{name}"); continue; }
            if (!h.Shape.SequenceEqual(t.Shape.Select(s => (long)s)))
            { problems.Add($"{OptimPrefix}{name} shape {h.ShapeString}, expected {Tensor.ShapeString(t.Shape)}"); continue; }
            if (t.DType == DType.F32 && !h.IsFloat || t.DType == DType.I32 && !h.IsInteger)
            { problems.Add($"{OptimPrefix}{name} dtype {h.DType} for a {t.DType} tensor"); continue; }
            if (t.DType == DType.F32) { var v = h.ToFloats(); optCopies.Add(() => t.Data.CopyFrom(v)); }
            else { var v = h.ToInt64().Select(x => (int)x).ToArray(); optCopies.Add(() => t.IntData.CopyFrom(v)); }
        }
        if (optimizerTensors != null)
            foreach (var k in file.Tensors.Keys)
                if (k.StartsWith(OptimPrefix, StringComparison.Ordinal) && !wanted.ContainsKey(k[OptimPrefix.Length..]))
                    problems.Add($"unexpected {k}");

        var state = new TrainingState
        {
            Step = Long(file, "step"),
            Epoch = (int)Long(file, "epoch"),
            RngState = ulong.Parse(Meta(file, "rng_state"), CultureInfo.InvariantCulture),
            RngInc = ulong.Parse(Meta(file, "rng_inc"), CultureInfo.InvariantCulture),
            BestMetric = double.Parse(Meta(file, "best_metric"), CultureInfo.InvariantCulture),
            Config = Meta(file, "config"),
            OptimizerTensors = wanted,
            OptimizerScalars = file.Metadata.Where(kv => kv.Key.StartsWith(ScalarPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key[ScalarPrefix.Length..], kv => double.Parse(kv.Value, CultureInfo.InvariantCulture)),
            Extra = file.Metadata.Where(kv => kv.Key.StartsWith(ExtraPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key[ExtraPrefix.Length..], kv => kv.Value),
        };

        var (report, ok, apply) = StateDict.Plan(model, file.Tensors, path, strict: true, keyPrefix: ModelPrefix);
        if (!ok || problems.Count > 0)
            throw new StateDictException($"{path}: checkpoint does not match this model/optimiser; nothing was loaded.\n" +
                (problems.Count > 0 ? "  optimiser: " + string.Join("; ", problems) + "\n" : "") + "  model: " + report.Describe(), report);
        apply();
        foreach (var a in optCopies) a();
        return state;
    }

    static string Meta(SafeTensorsFile f, string key) =>
        f.Metadata.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{f.Path}: checkpoint metadata lacks '{key}'");

    static long Long(SafeTensorsFile f, string key) => long.Parse(Meta(f, key), CultureInfo.InvariantCulture);
}
