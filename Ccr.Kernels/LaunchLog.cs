using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using ILGPU;

namespace Ccr.Kernels;

/// <summary>One kernel launch as a <see cref="LaunchLog.Recording"/> saw it: the kernel, its grid
/// and group, and every argument as text: scalars by value (floats round-trip), views as
/// <c>#block+offset:length</c> with the pool's block id (<c>ext#n</c> for a buffer outside the pool),
/// structs by their public fields. Two launches with equal records run the same code on the same memory.</summary>
internal sealed record LaunchRecord(string Kernel, string Config, string Args)
{
    public override string ToString() => $"{Kernel}<<<{Config}>>>({Args})";
}

/// <summary>
/// Every kernel launch of one device passes through here (<see cref="Launch.Load{T1}"/> and its
/// siblings). Always: <see cref="Count"/>. On request: a <see cref="Recording"/> of the launches and
/// of the pool's rentals (tests assert that steady-state training steps are identical, which is
/// what a captured CUDA graph assumes), and an emulated capture, in which launches are kept for a
/// later replay instead of being run (<see cref="StepGraphs"/> on the CPU accelerator: the semantics
/// of stream capture, testable without a GPU).
/// </summary>
internal sealed class LaunchLog
{
    readonly BufferPool _pool;
    readonly ConditionalWeakTable<object, object> _external = new();
    int _externalCount;
    readonly List<Recording> _recordings = new();
    List<Action>? _capture;

    /// <summary>Kernel launches issued since the device was created (run at once or captured).</summary>
    public long Count;

    internal LaunchLog(BufferPool pool) => _pool = pool;

    /// <summary>True when nothing records or captures: launchers take the fast path.</summary>
    public bool Quiet => _recordings.Count == 0 && _capture == null;

    /// <summary>True while an emulated capture keeps launches instead of running them.</summary>
    public bool Capturing => _capture != null;

    public static string NameOf(Delegate kernel) => $"{kernel.Method.DeclaringType?.Name}.{kernel.Method.Name}";

    /// <summary>Starts recording launches and rentals until the returned recording is disposed
    /// (recordings may overlap: a test's and the graph runner's).</summary>
    public Recording Record()
    {
        var r = new Recording(this);
        _recordings.Add(r);
        _pool.RentObserver = id => { foreach (var x in _recordings) x.Rents.Add(id); };
        return r;
    }

    void StopRecording(Recording r)
    {
        _recordings.Remove(r);
        if (_recordings.Count == 0) _pool.RentObserver = null;
    }

    /// <summary>From now on, launches are kept (not run) until <see cref="EndCapture"/>.</summary>
    internal void BeginCapture()
    {
        if (_capture != null) throw new InvalidOperationException("LaunchLog: a capture is already running");
        _capture = new List<Action>();
    }

    /// <summary>Ends an emulated capture and returns the kept launches, in order.</summary>
    internal List<Action> EndCapture()
    {
        var c = _capture ?? throw new InvalidOperationException("LaunchLog: no capture is running");
        _capture = null;
        return c;
    }

    /// <summary>Runs <paramref name="body"/> as an emulated capture whose launches are counted and
    /// then dropped: no kernel runs, so a step of any size costs only its host work (the launches'
    /// memory is rented but never touched). Returns the launches per kernel name, in first-launch
    /// order. For counting only (<c>Ccr.Bench launches</c>): the device's buffers are left as they
    /// were before the body, whatever it meant to compute.</summary>
    public List<(string Kernel, int Count)> CountWithoutRunning(Action body)
    {
        var counts = new Dictionary<string, int>();
        var order = new List<string>();
        using var rec = Record();
        BeginCapture();
        try { body(); }
        finally { EndCapture(); }
        foreach (var l in rec.Launches)
        {
            if (!counts.TryAdd(l.Kernel, 1)) counts[l.Kernel]++;
            else order.Add(l.Kernel);
        }
        return order.Select(k => (k, counts[k])).ToList();
    }

    /// <summary>The slow path of a launch: counts, records; false when the launch was captured (do not run it now).</summary>
    internal bool Observe(string name, KernelConfig c, object?[] args, Action run)
    {
        Count++;
        if (_recordings.Count > 0)
        {
            var blocks = new HashSet<long>();
            var text = new string[args.Length];
            for (int i = 0; i < args.Length; i++) text[i] = Describe(args[i], blocks);
            var rec = new LaunchRecord(name, $"{Dim(c.GridDim)} x {Dim(c.GroupDim)}", string.Join(", ", text));
            foreach (var r in _recordings) { r.Launches.Add(rec); r.Blocks.UnionWith(blocks); }
        }
        if (_capture == null) return true;
        _capture.Add(run);
        return false;
    }

    static string Dim(Index3D i) => i.Y == 1 && i.Z == 1 ? i.X.ToString(CultureInfo.InvariantCulture) : $"({i.X},{i.Y},{i.Z})";

    /// <summary>An argument as text; the pool blocks it touches go into <paramref name="blocks"/>.</summary>
    string Describe(object? a, HashSet<long> blocks, int depth = 0)
    {
        switch (a)
        {
            case null: return "null";
            case IContiguousArrayView v:
                if (v.Buffer is not { } buf) return "view(empty)";
                long? id = _pool.IdOf(buf);
                if (id is long b) blocks.Add(b);
                string where = id is long bid ? $"#{bid}" : $"ext#{_external.GetValue(buf, _ => Interlocked.Increment(ref _externalCount))}";
                return $"{where}+{v.Index}:{v.Length}";
            case float f: return f.ToString("R", CultureInfo.InvariantCulture);
            case double g: return g.ToString("R", CultureInfo.InvariantCulture);
            case IFormattable p when a.GetType().IsPrimitive: return p.ToString(null, CultureInfo.InvariantCulture);
        }
        var t = a.GetType();
        if (depth > 4 || !t.IsValueType) return a.ToString() ?? t.Name;
        // kernel argument structs keep all their data in public fields (a test checks every struct a
        // kernel takes), so the public fields describe an argument whole
        var fields = t.GetFields(BindingFlags.Instance | BindingFlags.Public);
        return "{" + string.Join(" ", fields.Select(f => $"{f.Name}={Describe(f.GetValue(a), blocks, depth + 1)}")) + "}";
    }

    /// <summary>What a recording saw: every launch (<see cref="LaunchRecord"/>), every rental from the
    /// pool (block ids, in order) and the set of pool blocks the launches touched.</summary>
    public sealed class Recording(LaunchLog log) : IDisposable
    {
        public List<LaunchRecord> Launches { get; } = new();
        public List<long> Rents { get; } = new();
        public HashSet<long> Blocks { get; } = new();
        public void Dispose() => log.StopRecording(this);
    }
}
