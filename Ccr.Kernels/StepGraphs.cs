namespace Ccr.Kernels;

/// <summary>How <see cref="StepGraphs.Run"/> ran a step.</summary>
internal enum StepMode { Eager, Captured, Replayed }

/// <summary>Host-side counters that a step body changes (batch norm's num_batches_tracked): read
/// before and after a captured body, so that a replay, which runs no host code, can add the same
/// change, and a failed capture can undo it.</summary>
internal sealed record HostCounters(Func<long[]> Read, Action<long[]> Write);

/// <summary>
/// Captures a training step as a CUDA graph and replays it (the step is latency-bound: ~7 us of
/// host time per ILGPU launch against ~0.8 us per kernel inside a graph, docs/DESIGN.md). One graph per
/// key: the caller's key must name everything on the host that changes which kernels run or with
/// which scalars (shapes, CCR's task pairs, the precision); everything that changes from step to
/// step must be in device memory (the batch, the step's scalars, the counters).
/// </summary>
/// <remarks>
/// Per key: the first step runs eagerly (kernels compile, the pool grows to the step's needs);
/// the second is captured and then launched; later ones replay. A step the caller wants eager (a
/// logging step, which reads values back) runs eagerly and leaves the graph alone. A replay
/// happens only while the pool still holds every block the graph touches as it was at capture
/// (the step's scratch free, the persistent tensors rented by the same holders, nothing given back
/// to the device): the pool hands out the lowest free id first, so an eager step of the same key
/// uses exactly the graph's blocks and the check holds across logging steps and evaluations;
/// otherwise the graph is dropped and recaptured. A capture never lets the pool grow or the host
/// copy (both throw inside the body); a capture that would grow is retried at the key's next step,
/// any other failure turns graphs off for the run (said once) and the step reruns eagerly, so
/// nothing is lost: the capture pass itself runs no kernel.
/// Backends: a CUDA device (stream capture through <see cref="CudaGraph"/>), or the CUDA variant
/// on the CPU accelerator, where the launches are kept and replayed by <see cref="LaunchLog"/>
/// (<see cref="Emulated"/>): the same semantics (nothing runs during the capture; a replay runs
/// only the kernels), so that the whole mechanism is tested without a GPU.
/// </remarks>
internal sealed class StepGraphs : IDisposable
{
    sealed class Entry
    {
        public int Runs, GrowthFailures;
        public CudaGraph.Exec? Cuda;
        public List<Action>? Launches; // emulated
        public BufferPool.BlockState[] Blocks = [];
        public long Releases;
        public long[] HostDelta = [];
        public long Kernels;
        public bool Valid(BufferPool pool) => (Cuda != null || Launches != null) && pool.Releases == Releases && pool.Matches(Blocks);
        public void Drop() { Cuda?.Dispose(); Cuda = null; Launches = null; }
    }

    const int MaxGrowthFailures = 3;
    readonly Device _d;
    readonly Action<string> _say;
    readonly Dictionary<string, Entry> _entries = new();
    readonly IntPtr _stream;

    /// <summary>Replays run the kept launches on the CPU accelerator (tests), not CUDA graphs.</summary>
    public bool Emulated { get; }
    /// <summary>Why graphs are off for the rest of the run, or null.</summary>
    public string? DisabledBecause { get; private set; }
    public long Captures { get; private set; }
    public long Replays { get; private set; }
    public long EagerSteps { get; private set; }
    /// <summary>Kernels in the most recently captured graph (its launch replaces that many).</summary>
    public long KernelsPerGraph { get; private set; }

    StepGraphs(Device d, bool emulated, IntPtr stream, Action<string> say)
    {
        _d = d; Emulated = emulated; _stream = stream; _say = say;
    }

    /// <summary>Graphs for <paramref name="d"/>: CUDA graphs on a CUDA device; on the CPU accelerator
    /// only with <paramref name="emulate"/> and the CUDA variant (its steps are kernels only; the CPU
    /// variant computes on the host, which nothing can capture). Null, with the reason said, when
    /// not possible.</summary>
    public static StepGraphs? Create(Device d, Action<string> say, bool emulate = false)
    {
        if (!d.IsCuda)
        {
            if (emulate && d.Variant == KernelVariant.Cuda) return new StepGraphs(d, true, IntPtr.Zero, say);
            return null; // plain launches: nothing to say, the CPU has no graphs
        }
        try { return new StepGraphs(d, false, CudaGraph.UseCaptureStream(d), say); }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or EntryPointNotFoundException or CudaGraphException)
        {
            say($"CUDA graphs off: {e.Message}; steps run with plain launches");
            return null;
        }
    }

    /// <summary>Runs one step: <paramref name="body"/> eagerly, or captured, or its graph replayed
    /// (see the class remarks). <paramref name="eager"/>: run the body as it is (a step that reads
    /// values back). <paramref name="counters"/>: host counters the body changes.</summary>
    public StepMode Run(string key, Action body, bool eager = false, HostCounters? counters = null)
    {
        if (eager || DisabledBecause != null) return RunEager(body);
        if (!_entries.TryGetValue(key, out var e)) _entries[key] = e = new Entry();
        if (e.Runs++ == 0 || e.GrowthFailures >= MaxGrowthFailures) return RunEager(body); // warm-up: JIT, pool growth
        if (e.Valid(_d.Pool))
        {
            Launch(e);
            if (counters != null && e.HostDelta.Length > 0) counters.Write(Add(counters.Read(), e.HostDelta));
            Replays++;
            return StepMode.Replayed;
        }
        e.Drop();
        return Capture(e, body, counters) ? StepMode.Captured : RunEager(body);
    }

    StepMode RunEager(Action body)
    {
        body();
        EagerSteps++;
        return StepMode.Eager;
    }

    bool Capture(Entry e, Action body, HostCounters? counters)
    {
        long[] before = counters?.Read() ?? [];
        var pool = _d.Pool;
        using var recording = _d.Launches.Record(); // the blocks the graph touches
        long launches = _d.Launches.Count;
        try
        {
            pool.GrowthForbiddenBy = "CUDA graph capture";
            if (Emulated) _d.Launches.BeginCapture();
            else CudaGraph.BeginCapture(_d, _stream);
            try
            {
                using (HostCopies.Forbid("a CUDA graph capture")) body();
            }
            catch
            {
                if (Emulated) _d.Launches.EndCapture();
                else CudaGraph.AbortCapture(_stream);
                throw;
            }
            if (Emulated) e.Launches = _d.Launches.EndCapture();
            else e.Cuda = CudaGraph.EndCapture(_stream);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            counters?.Write(before); // the capture pass changed host counters for a step that did not run
            if (ex is PoolGrowthException)
            {
                if (++e.GrowthFailures == MaxGrowthFailures) _say($"CUDA graphs: a step keeps needing new device memory; it runs with plain launches ({ex.Message})");
            }
            else
            {
                DisabledBecause = ex.Message;
                _say($"CUDA graphs off: capture failed ({ex.GetType().Name}: {ex.Message}); steps run with plain launches");
            }
            return false;
        }
        finally { pool.GrowthForbiddenBy = null; }
        e.Kernels = _d.Launches.Count - launches;
        e.Releases = pool.Releases;
        e.Blocks = recording.Blocks.Select(id => pool.StateOf(id) is { } s
            ? s.Rented ? s : s with { Rents = 0 }
            : throw new InvalidOperationException($"block #{id} vanished during a capture")).ToArray();
        e.HostDelta = counters != null ? Sub(counters.Read(), before) : [];
        KernelsPerGraph = e.Kernels;
        Captures++;
        Launch(e);
        return true;
    }

    void Launch(Entry e)
    {
        if (e.Cuda != null) { e.Cuda.Launch(); return; }
        foreach (var run in e.Launches!) run();
    }

    static long[] Add(long[] a, long[] b) => a.Select((v, i) => v + b[i]).ToArray();
    static long[] Sub(long[] a, long[] b) => a.Select((v, i) => v - b[i]).ToArray();

    public void Dispose()
    {
        foreach (var e in _entries.Values) e.Drop();
        _entries.Clear();
    }
}
