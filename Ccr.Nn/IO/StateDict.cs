using Ccr.Nn.Modules;

namespace Ccr.Nn.IO;

public enum StateKind { Parameter, Buffer, NumBatchesTracked }

/// <summary>One entry of a module's state dict: a parameter, a buffer, or a batch norm's host-side
/// num_batches_tracked (an int64 scalar in PyTorch).</summary>
public sealed record StateEntry(string Name, StateKind Kind, Tensor? Tensor, BatchNorm2d? Owner)
{
    public long[] Shape => Tensor == null ? [] : Tensor.Shape.Select(s => (long)s).ToArray();
    public string ShapeString => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>What a load found: keys the model has and the source lacks, keys the source has and the
/// model lacks, and keys present in both whose shape or dtype disagree.</summary>
public sealed class LoadReport
{
    public required string Source { get; init; }
    public List<string> Loaded { get; } = new();
    public List<string> Missing { get; } = new();
    public List<string> Unexpected { get; } = new();
    public List<string> Mismatched { get; } = new();

    public bool IsClean => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    public string Describe(int maxPerList = 20)
    {
        string L(string title, List<string> xs) => xs.Count == 0 ? "" :
            $"\n  {title} ({xs.Count}): " + string.Join(", ", xs.Take(maxPerList)) + (xs.Count > maxPerList ? ", ..." : "");
        return $"{Source}: {Loaded.Count} loaded" + L("missing", Missing) + L("unexpected", Unexpected) + L("shape/dtype mismatch", Mismatched);
    }
}

public sealed class StateDictException(string message, LoadReport report) : Exception(message)
{
    public LoadReport Report { get; } = report;
}

/// <summary>
/// A module's parameters and buffers by PyTorch name (module by module: own parameters, own buffers,
/// then children, as torch's state_dict orders them), written to and read from safetensors. Loading
/// validates every key, shape and dtype first and copies only when all is well, so a failed load
/// leaves the model untouched.
/// </summary>
public static class StateDict
{
    public static List<StateEntry> Entries(Module m, string prefix = "")
    {
        var list = new List<StateEntry>();
        Collect(m, prefix, list);
        return list;
    }

    static void Collect(Module m, string prefix, List<StateEntry> list)
    {
        // NamedParameters/NamedBuffers recurse; own entries are the ones without a dot
        foreach (var (n, t) in m.NamedParameters()) if (!n.Contains('.')) list.Add(new(prefix + n, StateKind.Parameter, t, null));
        foreach (var (n, t) in m.NamedBuffers()) if (!n.Contains('.')) list.Add(new(prefix + n, StateKind.Buffer, t, null));
        if (m is BatchNorm2d bn) list.Add(new(prefix + "num_batches_tracked", StateKind.NumBatchesTracked, null, bn));
        foreach (var (n, c) in m.Children()) Collect(c, prefix + n + ".", list);
    }

    /// <summary>The state as host tensors: F32 for parameters and float buffers, I32 for int buffers,
    /// I64 for num_batches_tracked.</summary>
    public static List<(string Name, HostTensor Tensor)> ToHost(Module m, string prefix = "")
    {
        var list = new List<(string, HostTensor)>();
        foreach (var e in Entries(m, prefix))
        {
            if (e.Kind == StateKind.NumBatchesTracked) { list.Add((e.Name, HostTensor.FromInt64(e.Owner!.NumBatchesTracked))); continue; }
            var t = e.Tensor!;
            list.Add((e.Name, t.DType == DType.F32 ? HostTensor.FromFloats(t.ToArray(), e.Shape) : HostTensor.FromInts(t.ToIntArray(), e.Shape)));
        }
        return list;
    }

    public static void Save(string path, Module m, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Write(path, ToHost(m), metadata);

    /// <summary>Loads a safetensors file by name. <paramref name="strict"/>: missing or unexpected keys
    /// are errors too (a shape or dtype mismatch always is). A timm classifier checkpoint loads into
    /// the feature backbone with strict: false (its head keys are unexpected).</summary>
    public static LoadReport Load(Module m, string path, bool strict = true) =>
        Load(m, SafeTensors.Read(path).Tensors, path, strict);

    /// <summary>Loads <paramref name="tensors"/> whose keys are <paramref name="keyPrefix"/> + the
    /// module's names; keys without the prefix are ignored (other sections of a checkpoint).</summary>
    public static LoadReport Load(Module m, IReadOnlyDictionary<string, HostTensor> tensors, string source,
                                  bool strict = true, string keyPrefix = "")
    {
        var (report, ok, apply) = Plan(m, tensors, source, strict, keyPrefix);
        if (!ok) throw new StateDictException($"state dict does not fit the model; nothing was loaded. {report.Describe()}", report);
        apply();
        return report;
    }

    /// <summary>Checks a load without changing anything: the report, whether it may proceed, and the
    /// action that copies the values in (checkpoints combine it with the optimiser's check).</summary>
    public static (LoadReport Report, bool Ok, Action Apply) Plan(Module m, IReadOnlyDictionary<string, HostTensor> tensors,
                                                                string source, bool strict = true, string keyPrefix = "")
    {
        var report = new LoadReport { Source = source };
        var entries = Entries(m, keyPrefix);
        var plan = new List<Action>();  // the copies, run only once everything has been checked
        var known = new HashSet<string>();
        foreach (var e in entries)
        {
            known.Add(e.Name);
            if (!tensors.TryGetValue(e.Name, out var h)) { report.Missing.Add(e.Name); continue; }
            string? why = Check(e, h);
            if (why != null) { report.Mismatched.Add($"{e.Name} ({why})"); continue; }
            if (e.Kind == StateKind.NumBatchesTracked)
            {
                long v = h.ToInt64()[0];
                var bn = e.Owner!;
                plan.Add(() => bn.NumBatchesTracked = v);
            }
            else if (e.Tensor!.DType == DType.F32)
            {
                float[] v = h.ToFloats();
                var t = e.Tensor;
                plan.Add(() => t.Data.CopyFrom(v));
            }
            else
            {
                int[] v = h.ToInt64().Select(x => checked((int)x)).ToArray();
                var t = e.Tensor;
                plan.Add(() => t.IntData.CopyFrom(v));
            }
            report.Loaded.Add(e.Name);
        }
        foreach (var k in tensors.Keys)
            if (k.StartsWith(keyPrefix, StringComparison.Ordinal) && !known.Contains(k)) report.Unexpected.Add(k);

        bool fail = report.Mismatched.Count > 0 || (strict && (report.Missing.Count > 0 || report.Unexpected.Count > 0));
        return (report, !fail, () => { foreach (var a in plan) a(); });
    }

    /// <summary>Null when <paramref name="h"/> fits entry <paramref name="e"/>, else why not.</summary>
    static string? Check(StateEntry e, HostTensor h)
    {
        if (e.Kind == StateKind.NumBatchesTracked)
        {
            if (h.DType is not ("I64" or "I32")) return $"dtype {h.DType}, expected I64";
            if (h.Numel() != 1) return $"shape {h.ShapeString}, expected a scalar";
            return null;
        }
        if (!e.Shape.AsSpan().SequenceEqual(h.Shape)) return $"shape {h.ShapeString}, expected {e.ShapeString}";
        if (e.Tensor!.DType == DType.F32 && !h.IsFloat) return $"dtype {h.DType}, expected a float dtype";
        if (e.Tensor.DType == DType.I32 && h.DType is not ("I64" or "I32")) return $"dtype {h.DType}, expected I32/I64";
        return null;
    }
}
