using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// A typed window (offset and length in elements) into a pooled device block. Kernels take
/// <see cref="View"/>; CPU variants take <see cref="Span"/>, which is valid only where device memory
/// is host memory (the CPU accelerator).
/// </summary>
public readonly struct Buf<T> where T : unmanaged
{
    readonly PooledBlock _block;
    public long Offset { get; }
    public long Length { get; }

    public Buf(PooledBlock block, long offset, long length)
    {
        long capacity = block.Bytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (offset < 0 || length < 0 || offset + length > capacity)
            throw new ArgumentOutOfRangeException(nameof(length),
                $"window [{offset}, {offset + length}) outside a block of {capacity} elements");
        _block = block; Offset = offset; Length = length;
    }

    public bool IsValid => _block is { IsReturned: false };
    public PooledBlock Block => _block;

    public ArrayView<T> View => ((ArrayView<byte>)_block.Raw.View).Cast<T>().SubView(Offset, Length);

    public unsafe T* Ptr
    {
        get
        {
            var raw = _block.Raw;
            if (raw.AcceleratorType != AcceleratorType.CPU)
                throw new InvalidOperationException("host pointer of a buffer that lives on a GPU");
            return (T*)raw.NativePtr + Offset;
        }
    }

    public unsafe Span<T> Span => new(Ptr, checked((int)Length));

    public Buf<T> Slice(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"slice [{offset}, {offset + length}) of a buffer of {Length}");
        return new Buf<T>(_block, Offset + offset, length);
    }

    public void CopyFrom(ReadOnlySpan<T> src)
    {
        if (src.Length != Length) throw new ArgumentException($"copy of {src.Length} elements into a buffer of {Length}");
        HostCopies.Count();
        if (_block.Raw.AcceleratorType == AcceleratorType.CPU) { _block.Raw.Accelerator.Synchronize(); src.CopyTo(Span); }
        else View.CopyFromCPU(_block.Stream, src.ToArray());
    }

    public T[] ToArray()
    {
        var a = new T[Length];
        HostCopies.Count();
        if (_block.Raw.AcceleratorType == AcceleratorType.CPU) { _block.Raw.Accelerator.Synchronize(); Span.CopyTo(a); }
        else View.CopyToCPU(_block.Stream, a); // waits for the stream: the launches that wrote it first
        return a;
    }
}

/// <summary>Copies between host arrays and device buffers (<see cref="Buf{T}.CopyFrom"/>,
/// <see cref="Buf{T}.ToArray"/>) since the process started: each one waits for the device, so tests
/// assert that a steady-state step makes none where it promises so. <see cref="Forbid"/> makes
/// any copy on this thread throw (the trainer's steady-state steps, a CUDA graph capture).</summary>
public static class HostCopies
{
    static long _total;
    [ThreadStatic] static string? _forbiddenBy;
    public static long Total => Interlocked.Read(ref _total);

    internal static void Count()
    {
        if (_forbiddenBy != null) throw new InvalidOperationException($"a host copy during {_forbiddenBy}");
        Interlocked.Increment(ref _total);
    }

    /// <summary>Until disposed, a host copy on this thread throws, naming <paramref name="during"/>.</summary>
    public static IDisposable Forbid(string during) => new Forbidden(during);

    sealed class Forbidden : IDisposable
    {
        readonly string? _outer = _forbiddenBy;
        bool _done;
        public Forbidden(string during) => _forbiddenBy = during;
        public void Dispose() { if (!_done) { _done = true; _forbiddenBy = _outer; } }
    }
}
