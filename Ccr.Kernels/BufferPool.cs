using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Reuses device buffers by size class (as tinygrad's and PyTorch's caching allocators do): a
/// returned block goes to a free list and the next request of the same class takes it. When an
/// allocation fails the free lists are released and the allocation is tried once more; if that
/// fails too the error says how much was asked and how much is in use.
/// </summary>
public sealed class BufferPool : IDisposable
{
    readonly Accelerator _acc;
    readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> _free = new();
    readonly object _lock = new();

    /// <summary>Bytes in blocks handed out and not yet returned.</summary>
    public long BytesInUse { get; private set; }
    /// <summary>Bytes held in free lists, ready for reuse.</summary>
    public long BytesCached { get; private set; }
    /// <summary>Blocks handed out and not yet returned.</summary>
    public long BlocksInUse { get; private set; }
    /// <summary>Most bytes the pool may hold (in use plus cached); null: what the device has. Set
    /// from <c>CCR_MEMORY_LIMIT_MB</c> by the commands, to share a device or to test running out.</summary>
    public long? LimitBytes { get; set; }

    internal BufferPool(Accelerator acc) => _acc = acc;

    /// <summary>Size classes: multiples of 512 B up to 1 MiB, then steps of 1/8 of a power of two,
    /// so that a reused block wastes at most 12.5%.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= 0) return 512;
        if (bytes <= 1 << 20) return (bytes + 511) / 512 * 512;
        long p = 1L << (int)(63 - long.LeadingZeroCount(bytes - 1));
        long step = p / 8;
        return (bytes + step - 1) / step * step;
    }

    public PooledBlock Rent(long bytes)
    {
        long size = SizeClass(bytes);
        lock (_lock)
        {
            MemoryBuffer1D<byte, Stride1D.Dense> buf;
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                buf = stack.Pop();
                BytesCached -= size;
            }
            else buf = AllocateOrRetry(size, bytes);
            BytesInUse += size;
            BlocksInUse++;
            return new PooledBlock(this, buf, size);
        }
    }

    MemoryBuffer1D<byte, Stride1D.Dense> AllocateOrRetry(long size, long asked)
    {
        if (LimitBytes is long limit && BytesInUse + BytesCached + size > limit)
        {
            ReleaseCached();
            if (BytesInUse + size > limit)
                throw new OutOfMemoryException(
                    $"device memory limit of {Mib(limit)} reached on {_acc.Name}: asked for {Mib(asked)} ({asked} bytes), " +
                    $"{Mib(BytesInUse)} in use in {BlocksInUse} blocks");
        }
        try { return _acc.Allocate1D<byte>(size); }
        catch (Exception e) when (e is not ObjectDisposedException)
        {
            ReleaseCached();
            try { return _acc.Allocate1D<byte>(size); }
            catch (Exception e2) when (e2 is not ObjectDisposedException)
            {
                throw new OutOfMemoryException(
                    $"device out of memory on {_acc.Name}: asked for {Mib(asked)} ({asked} bytes), " +
                    $"{Mib(BytesInUse)} in use in {BlocksInUse} blocks, device has {Mib(_acc.MemorySize)}", e2);
            }
        }
    }

    static string Mib(long b) => $"{b / 1048576.0:F1} MiB";

    internal void Return(PooledBlock block)
    {
        lock (_lock)
        {
            BytesInUse -= block.Bytes;
            BlocksInUse--;
            if (!_free.TryGetValue(block.Bytes, out var stack))
                _free[block.Bytes] = stack = new Stack<MemoryBuffer1D<byte, Stride1D.Dense>>();
            stack.Push(block.Buffer);
            BytesCached += block.Bytes;
        }
    }

    /// <summary>Frees every cached (unused) block back to the device.</summary>
    public void ReleaseCached()
    {
        lock (_lock)
        {
            foreach (var s in _free.Values)
                while (s.Count > 0) s.Pop().Dispose();
            _free.Clear();
            BytesCached = 0;
        }
    }

    public void Dispose() => ReleaseCached();
}

/// <summary>A block rented from the pool; disposing it returns it (once).</summary>
public sealed class PooledBlock : IDisposable
{
    readonly BufferPool _pool;
    internal MemoryBuffer1D<byte, Stride1D.Dense> Buffer { get; }
    public long Bytes { get; }
    public bool IsReturned { get; private set; }

    internal PooledBlock(BufferPool pool, MemoryBuffer1D<byte, Stride1D.Dense> buffer, long bytes)
    {
        _pool = pool; Buffer = buffer; Bytes = bytes;
    }

    public MemoryBuffer1D<byte, Stride1D.Dense> Raw =>
        IsReturned ? throw new ObjectDisposedException("PooledBlock", "device buffer used after it was returned to the pool") : Buffer;

    public void Dispose()
    {
        if (IsReturned) return;
        IsReturned = true;
        _pool.Return(this);
    }
}
