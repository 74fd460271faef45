using System.Runtime.CompilerServices;
using Ccr.Kernels;

namespace Ccr.Nn;

/// <summary>Live tensor and byte counters per device, for leak tests and the trainer's memory log.</summary>
public sealed class TensorStats
{
    static readonly ConditionalWeakTable<Device, TensorStats> All = new();
    long _live, _bytes;

    public static TensorStats Of(Device d) => All.GetValue(d, _ => new TensorStats());

    /// <summary>Tensors created and not yet disposed (views included).</summary>
    public long LiveTensors => Interlocked.Read(ref _live);
    /// <summary>Bytes of pool blocks owned by live tensors.</summary>
    public long LiveBytes => Interlocked.Read(ref _bytes);

    internal void Created(long bytes) { Interlocked.Increment(ref _live); Interlocked.Add(ref _bytes, bytes); }

    internal void Released(long bytes, bool keepCount = false)
    {
        if (!keepCount) Interlocked.Decrement(ref _live);
        Interlocked.Add(ref _bytes, -bytes);
    }
}
