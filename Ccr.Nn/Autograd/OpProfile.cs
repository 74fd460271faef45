using System.Diagnostics;

namespace Ccr.Nn;

/// <summary>
/// Where a step's time goes, per op, on the CPU variant (whose ops are synchronous host code, so a
/// wall-clock interval is the op's cost; on a CUDA device launches are asynchronous and these
/// figures mean nothing). While a profile is active on this thread, <see cref="Autograd.Record"/>
/// charges the time since the previous mark to the op it records (its forward), and the backward
/// pass charges each node's backward to its op. Time between marks that no op claims (the optimiser,
/// the upload, host decisions) is what the caller's step time minus the total leaves.
/// Keys group ops by kind and shape: "conv2d 18->18 3x3 s1 @24x32" (Cin->Cout, kernel, stride, output).
/// </summary>
public sealed class OpProfile : IDisposable
{
    /// <summary>Calls, forward and backward ticks of one key.</summary>
    public sealed class Entry
    {
        public int Calls;
        public long ForwardTicks, BackwardTicks;
        public double ForwardMs => ForwardTicks * 1e3 / Stopwatch.Frequency;
        public double BackwardMs => BackwardTicks * 1e3 / Stopwatch.Frequency;
    }

    [ThreadStatic] static OpProfile? _current;
    readonly OpProfile? _outer;
    long _last;

    public Dictionary<string, Entry> Entries { get; } = new();

    /// <summary>Starts profiling this thread's ops until <see cref="Dispose"/>.</summary>
    public OpProfile()
    {
        _outer = _current;
        _current = this;
        _last = Stopwatch.GetTimestamp();
    }

    internal static OpProfile? Current => _current;

    /// <summary>Restarts the interval: time before this point is charged to no op.</summary>
    public void Mark() => _last = Stopwatch.GetTimestamp();

    internal void Forward(string op, Tensor output, Tensor[] inputs)
    {
        long now = Stopwatch.GetTimestamp();
        var e = Get(Key(op, output, inputs));
        e.Calls++;
        e.ForwardTicks += now - _last;
        _last = now;
    }

    internal void Backward(string key, long ticks)
    {
        Get(key).BackwardTicks += ticks;
        _last = Stopwatch.GetTimestamp();
    }

    Entry Get(string key)
    {
        if (!Entries.TryGetValue(key, out var e)) Entries[key] = e = new Entry();
        return e;
    }

    /// <summary>The group an op's call falls in: convolutions and matrix products by shape, the rest by name.</summary>
    internal static string Key(string op, Tensor output, Tensor[] inputs)
    {
        if (op == "conv2d" && inputs.Length >= 2 && inputs[0].Shape.Length == 4 && inputs[1].Shape.Length == 4)
        {
            var x = inputs[0].Shape; var w = inputs[1].Shape; var y = output.Shape;
            int stride = Math.Max(1, (int)Math.Round((double)x[2] / y[2]));
            return $"conv2d {w[1]}->{w[0]} {w[2]}x{w[3]} s{stride} @{y[2]}x{y[3]}";
        }
        if (op == "matmul" && inputs.Length == 2)
            return $"matmul {inputs[0].Shape[0]}x{inputs[0].Shape[1]} @ {inputs[1].Shape[0]}x{inputs[1].Shape[1]}";
        return op;
    }

    public void Dispose()
    {
        if (_current == this) _current = _outer;
    }
}
