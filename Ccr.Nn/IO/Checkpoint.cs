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

/// <summary>A checkpoint that cannot be used: missing, unreadable or truncated, not a Ccr checkpoint,
/// or holding non-finite values. The message is one line that names the file.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Checkpoints as one safetensors file: "model.&lt;name&gt;" (parameters, buffers,
/// num_batches_tracked), "optim.&lt;name&gt;" (optimiser tensors), and the scalars in the metadata.
/// Written atomically: a temporary file beside the target ("NAME.tmp-PID"), flushed to disk (fsync),
/// then renamed over it, so a crash mid-write leaves the previous checkpoint whole; temporaries of
/// processes that died mid-write are removed by <see cref="RemoveStaleTemporaries"/>. A checkpoint
/// never holds a non-finite value: <see cref="Save"/> refuses (NonFiniteException, nothing written)
/// and the loaders refuse such a file. Loading refuses a checkpoint whose model or optimiser tensors
/// do not match, listing what differs, and changes nothing then.
/// </summary>
public static class Checkpoint
{
    public const string Format = "ccr-checkpoint";
    const string ModelPrefix = "model.", OptimPrefix = "optim.", ScalarPrefix = "optim_scalar.", ExtraPrefix = "extra.", CrcPrefix = "crc32.";
    const string TempMarker = ".tmp-";

    /// <param name="wrapStream">Wraps the file stream (tests inject a failing stream to simulate a crash).</param>
    /// <exception cref="NonFiniteException">a tensor holds NaN or infinity; nothing is written.</exception>
    /// <exception cref="IOException">the write failed (full disk, ...); the previous file is unchanged.</exception>
    public static void Save(string path, Module model, TrainingState state, Func<Stream, Stream>? wrapStream = null)
    {
        var tensors = StateDict.ToHost(model, ModelPrefix);
        foreach (var (name, t) in state.OptimizerTensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            tensors.Add((OptimPrefix + name, t.DType == DType.F32
                ? HostTensor.FromFloats(t.ToArray(), t.Shape.Select(s => (long)s).ToArray())
                : HostTensor.FromInts(t.ToIntArray(), t.Shape.Select(s => (long)s).ToArray())));
        var bad = NonFinite(tensors);
        if (bad.Count > 0)
            throw new NonFiniteException($"refusing to write {path}: {DescribeNonFinite(bad)}", bad[0].Name);
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
        // a CRC-32 of every tensor's bytes: a flipped bit in a weight is refused on load, not trained on
        foreach (var (name, t) in tensors) meta[CrcPrefix + name] = Crc32.Hash(t.Data).ToString("x8", CultureInfo.InvariantCulture);
        foreach (var (k, v) in state.OptimizerScalars) meta[ScalarPrefix + k] = v.ToString("R", CultureInfo.InvariantCulture);
        foreach (var (k, v) in state.Extra) meta[ExtraPrefix + k] = v;

        string full = Path.GetFullPath(path);
        string tmp = full + TempMarker + Environment.ProcessId;
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
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (Exception) { /* the write error matters, not this one */ }
            if (e is not (IOException or UnauthorizedAccessException)) throw;
            string before = File.Exists(full) ? "the previous checkpoint is unchanged" : "no checkpoint was there before";
            throw new IOException($"{path}: could not write the checkpoint ({e.Message.TrimEnd('.')}); {before}", e);
        }
    }

    /// <summary>
    /// Removes "NAME.tmp-PID" files in <paramref name="dir"/> left by a process that died while
    /// writing a checkpoint (its PID is no longer running). Returns the files removed.
    /// </summary>
    public static List<string> RemoveStaleTemporaries(string dir)
    {
        var removed = new List<string>();
        if (!Directory.Exists(dir)) return removed;
        foreach (var f in Directory.EnumerateFiles(dir, "*" + TempMarker + "*"))
        {
            string name = Path.GetFileName(f);
            int at = name.LastIndexOf(TempMarker, StringComparison.Ordinal);
            if (!int.TryParse(name.AsSpan(at + TempMarker.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (IsRunning(pid)) continue;
            try { File.Delete(f); removed.Add(f); } catch (IOException) { }
        }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }       // no such process
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>
    /// Loads model state into <paramref name="model"/> and optimiser tensors into
    /// <paramref name="optimizerTensors"/> (same names and shapes as saved), and returns the rest.
    /// Everything is checked before anything is copied.
    /// </summary>
    /// <exception cref="CheckpointException">missing, unreadable, not a checkpoint, non-finite values.</exception>
    /// <exception cref="StateDictException">the tensors do not fit this model / optimiser.</exception>
    public static TrainingState Load(string path, Module model, IReadOnlyDictionary<string, Tensor>? optimizerTensors = null)
    {
        var file = Open(path);
        RefuseNonFinite(file, "");
        VerifyChecksums(file);

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

        var state = ReadState(file);
        state.OptimizerTensors = wanted;

        var (report, ok, apply) = StateDict.Plan(model, file.Tensors, path, strict: true, keyPrefix: ModelPrefix);
        if (!ok || problems.Count > 0)
            throw new StateDictException($"{path}: checkpoint does not match this model/optimiser; nothing was loaded. " +
                (problems.Count > 0 ? "optimiser: " + string.Join("; ", problems) + ". " : "") + "model: " + OneLine(report), report);
        apply();
        foreach (var a in optCopies) a();
        return state;
    }

    /// <summary>
    /// Loads only the weights under "model.<paramref name="prefix"/>" into <paramref name="module"/>
    /// (inference: the network without the regulariser or the optimiser), strictly within that
    /// prefix, and returns the saved state (step, config, ...). Nothing changes on failure.
    /// </summary>
    public static TrainingState LoadWeights(string path, Module module, string prefix)
    {
        var file = Open(path);
        string keyPrefix = ModelPrefix + prefix;
        RefuseNonFinite(file, keyPrefix);
        VerifyChecksums(file);
        var (report, ok, apply) = StateDict.Plan(module, file.Tensors, path, strict: true, keyPrefix: keyPrefix);
        if (!ok)
            throw new StateDictException($"{path}: checkpoint does not match this model; nothing was loaded. {OneLine(report)}", report);
        var state = ReadState(file);
        apply();
        return state;
    }

    /// <summary>The resolved config text saved in a checkpoint ("" when it holds none).</summary>
    public static string ReadConfig(string path) => Open(path).Metadata.GetValueOrDefault("config", "");

    /// <summary>Reads and parses a checkpoint file; every problem is a <see cref="CheckpointException"/>.</summary>
    static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException($"{path}: checkpoint not found");
        SafeTensorsFile file;
        try { file = SafeTensors.Read(path); }
        catch (InvalidDataException e)
        {
            string why = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
            throw new CheckpointException($"{path}: not a readable checkpoint ({why})", e);
        }
        if (!file.Metadata.TryGetValue("format", out var fmt) || fmt != Format)
            throw new CheckpointException($"{path}: not a Ccr checkpoint (metadata format '{fmt ?? "none"}')");
        return file;
    }

    /// <summary>Every tensor's bytes against the CRC-32 saved with it (checkpoints written before
    /// checksums existed have none and are taken as they are).</summary>
    static void VerifyChecksums(SafeTensorsFile file)
    {
        if (!file.Metadata.Keys.Any(k => k.StartsWith(CrcPrefix, StringComparison.Ordinal))) return;
        var bad = new List<string>();
        foreach (var name in file.Names)
        {
            if (!file.Metadata.TryGetValue(CrcPrefix + name, out var saved)) { bad.Add($"{name} (no checksum saved)"); continue; }
            string now = Crc32.Hash(file.Tensors[name].Data).ToString("x8", CultureInfo.InvariantCulture);
            if (now != saved) bad.Add($"{name} (CRC-32 {now}, saved {saved})");
        }
        if (bad.Count > 0)
            throw new CheckpointException($"{file.Path}: damaged checkpoint, the bytes of {bad.Count} tensor(s) changed since it was written: " +
                string.Join(", ", bad.Take(3)) + (bad.Count > 3 ? ", ..." : "") + "; use another copy (best.ckpt, a backup) or retrain");
    }

    static TrainingState ReadState(SafeTensorsFile file)
    {
        try
        {
            return new TrainingState
            {
                Step = Long(file, "step"),
                Epoch = (int)Long(file, "epoch"),
                RngState = ulong.Parse(Meta(file, "rng_state"), CultureInfo.InvariantCulture),
                RngInc = ulong.Parse(Meta(file, "rng_inc"), CultureInfo.InvariantCulture),
                BestMetric = double.Parse(Meta(file, "best_metric"), CultureInfo.InvariantCulture),
                Config = Meta(file, "config"),
                OptimizerScalars = file.Metadata.Where(kv => kv.Key.StartsWith(ScalarPrefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[ScalarPrefix.Length..], kv => double.Parse(kv.Value, CultureInfo.InvariantCulture)),
                Extra = file.Metadata.Where(kv => kv.Key.StartsWith(ExtraPrefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[ExtraPrefix.Length..], kv => kv.Value),
            };
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new CheckpointException($"{file.Path}: damaged checkpoint metadata ({e.Message})", e);
        }
    }

    static void RefuseNonFinite(SafeTensorsFile file, string keyPrefix)
    {
        var bad = NonFinite(file.Tensors.Where(kv => kv.Key.StartsWith(keyPrefix, StringComparison.Ordinal))
                                        .Select(kv => (kv.Key, kv.Value)));
        if (bad.Count > 0)
            throw new CheckpointException($"{file.Path}: unusable checkpoint, {DescribeNonFinite(bad)}");
    }

    /// <summary>Float tensors holding NaN or infinity: name, count, first index and value.</summary>
    static List<(string Name, long Count, long First, float Value)> NonFinite(IEnumerable<(string Name, HostTensor Tensor)> tensors)
    {
        var bad = new List<(string, long, long, float)>();
        foreach (var (name, h) in tensors)
        {
            if (!h.IsFloat) continue;
            var v = h.ToFloats();
            long count = 0, first = -1;
            for (long i = 0; i < v.Length; i++)
                if (!float.IsFinite(v[i])) { count++; if (first < 0) first = i; }
            if (count > 0) bad.Add((name, count, first, v[first]));
        }
        return bad;
    }

    static string DescribeNonFinite(List<(string Name, long Count, long First, float Value)> bad)
    {
        long total = bad.Sum(b => b.Count);
        string list = string.Join(", ", bad.Take(3).Select(b => $"{b.Name} ({b.Count}, first {b.Value} at {b.First})"));
        return $"{total} non-finite values in {bad.Count} tensor(s): {list}{(bad.Count > 3 ? ", ..." : "")}";
    }

    /// <summary>A load report on one line: counts and the first few names of each kind.</summary>
    static string OneLine(LoadReport r)
    {
        string L(string title, List<string> xs) => xs.Count == 0 ? "" :
            $"; {title} ({xs.Count}): " + string.Join(", ", xs.Take(4)) + (xs.Count > 4 ? ", ..." : "");
        return $"{r.Loaded.Count} tensors fit" + L("missing", r.Missing) + L("unexpected", r.Unexpected) + L("shape/dtype mismatch", r.Mismatched);
    }

    static string Meta(SafeTensorsFile f, string key) =>
        f.Metadata.TryGetValue(key, out var v) ? v : throw new CheckpointException($"{f.Path}: checkpoint metadata lacks '{key}'");

    static long Long(SafeTensorsFile f, string key) => long.Parse(Meta(f, key), CultureInfo.InvariantCulture);
}

/// <summary>CRC-32 (IEEE 802.3, the polynomial of zip and PNG) of a byte span.</summary>
public static class Crc32
{
    static readonly uint[] Table = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Hash(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
