using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Reuses device buffers by size class (as tinygrad's and PyTorch's caching allocators do): a
/// returned block goes to a free list and the next request of the same class takes it. When an
/// allocation fails the free lists are released and the allocation is tried once more; if that
/// fails too the error says how much was asked and how much is in use.
/// </summary>
/// <remarks>
/// Deterministic addresses: every block has an id (the order of its allocation) and a request
/// takes the free block of its class with the lowest id. The free set after a step that returns
/// everything it rented is the set it started with, so the next step with the same requests gets
/// exactly the same blocks, whatever order the step returned them in: a CUDA graph captured from
/// one step stays valid for the next (<see cref="StepGraphs"/>), and tests can assert it. (A stack
/// per class would hand two blocks of one class out in alternating order from step to step.)
/// </remarks>
public sealed class BufferPool : IDisposable
{
    internal sealed class Slot(long id, long size, MemoryBuffer1D<byte, Stride1D.Dense> buffer)
    {
        public readonly long Id = id, Size = size;
        public readonly MemoryBuffer1D<byte, Stride1D.Dense> Buffer = buffer;
        public bool Rented;
        /// <summary>Times the block was handed out: a holder that returned it and took it again is a new holder.</summary>
        public long Rents;
    }

    sealed class ById : IComparer<Slot>
    {
        public static readonly ById Instance = new();
        public int Compare(Slot? a, Slot? b) => a!.Id.CompareTo(b!.Id);
    }

    readonly Accelerator _acc;
    readonly Dictionary<long, SortedSet<Slot>> _free = new();
    readonly Dictionary<long, Slot> _slots = new();
    readonly Dictionary<MemoryBuffer, Slot> _byBuffer = new(ReferenceEqualityComparer.Instance);
    readonly object _lock = new();
    long _nextId;

    /// <summary>Bytes in blocks handed out and not yet returned.</summary>
    public long BytesInUse { get; private set; }
    /// <summary>Bytes held in free lists, ready for reuse.</summary>
    public long BytesCached { get; private set; }
    /// <summary>Blocks handed out and not yet returned.</summary>
    public long BlocksInUse { get; private set; }
    /// <summary>Device allocations made so far: the pool grew when this changed.</summary>
    public long Allocations { get; private set; }
    /// <summary>Times cached blocks were given back to the device: a graph captured before may
    /// point at memory that no longer exists.</summary>
    public long Releases { get; private set; }
    /// <summary>Most bytes the pool may hold (in use plus cached); null: what the device has. Set
    /// from <c>CCR_MEMORY_LIMIT_MB</c> by the commands, to share a device or to test running out.</summary>
    public long? LimitBytes { get; set; }
    /// <summary>While set, a request that would allocate throws instead (a CUDA graph capture:
    /// allocating there fails or bakes in memory that the next replay does not own).</summary>
    public string? GrowthForbiddenBy { get; set; }

    /// <summary>Told the block id of every rental while a <see cref="LaunchLog.Recording"/> runs.</summary>
    internal Action<long>? RentObserver;

    readonly Func<AcceleratorStream> _stream;

    /// <summary>The device's stream as it is now (<see cref="Device.Stream"/>): host copies of its
    /// blocks (<see cref="Buf{T}.CopyFrom"/>, <see cref="Buf{T}.ToArray"/>) are issued on it.</summary>
    internal AcceleratorStream Stream => _stream();

    internal BufferPool(Accelerator acc, Func<AcceleratorStream> stream)
    {
        _acc = acc;
        _stream = stream;
    }

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
            Slot slot;
            if (_free.TryGetValue(size, out var set) && set.Count > 0)
            {
                slot = set.Min!;
                set.Remove(slot);
                BytesCached -= size;
            }
            else
            {
                if (GrowthForbiddenBy is { } who) throw new PoolGrowthException(size, who);
                slot = new Slot(_nextId++, size, AllocateOrRetry(size, bytes));
                _slots[slot.Id] = slot;
                _byBuffer[Native(slot.Buffer)] = slot;
                Allocations++;
            }
            slot.Rented = true;
            slot.Rents++;
            BytesInUse += size;
            BlocksInUse++;
            RentObserver?.Invoke(slot.Id);
            return new PooledBlock(this, slot);
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

    internal void Return(Slot slot)
    {
        lock (_lock)
        {
            BytesInUse -= slot.Size;
            BlocksInUse--;
            slot.Rented = false;
            if (!_free.TryGetValue(slot.Size, out var set))
                _free[slot.Size] = set = new SortedSet<Slot>(ById.Instance);
            set.Add(slot);
            BytesCached += slot.Size;
        }
    }

    /// <summary>The buffer that views of <paramref name="b"/> report (<see cref="IArrayView.Buffer"/>:
    /// the accelerator's own buffer inside ILGPU's typed wrapper).</summary>
    static MemoryBuffer Native(MemoryBuffer1D<byte, Stride1D.Dense> b) => ((IArrayView)b.View.BaseView).Buffer;

    /// <summary>The id of the pool block behind <paramref name="buffer"/> (as a view reports it), or
    /// null when the pool did not make it.</summary>
    public long? IdOf(MemoryBuffer buffer)
    {
        lock (_lock) return _byBuffer.TryGetValue(buffer, out var s) ? s.Id : null;
    }

    /// <summary>What a captured graph assumes of one block it touches: free (the step's scratch), or
    /// rented by the holder that had it at capture time (its <see cref="Slot.Rents"/> count).</summary>
    public readonly record struct BlockState(long Id, bool Rented, long Rents);

    /// <summary>The state of block <paramref name="id"/> now, or null when it was given back to the device.</summary>
    public BlockState? StateOf(long id)
    {
        lock (_lock) return _slots.TryGetValue(id, out var s) ? new BlockState(s.Id, s.Rented, s.Rents) : null;
    }

    /// <summary>True when every block is alive and as <paramref name="expected"/> says: free ones
    /// free, rented ones still with the same holder.</summary>
    public bool Matches(IEnumerable<BlockState> expected)
    {
        lock (_lock)
            foreach (var e in expected)
            {
                if (!_slots.TryGetValue(e.Id, out var s) || s.Rented != e.Rented || e.Rented && s.Rents != e.Rents) return false;
            }
        return true;
    }

    /// <summary>Frees every cached (unused) block back to the device.</summary>
    public void ReleaseCached()
    {
        lock (_lock)
        {
            bool any = false;
            foreach (var set in _free.Values)
                foreach (var s in set)
                {
                    _slots.Remove(s.Id);
                    _byBuffer.Remove(Native(s.Buffer));
                    s.Buffer.Dispose();
                    any = true;
                }
            _free.Clear();
            BytesCached = 0;
            if (any) Releases++;
        }
    }

    public void Dispose() => ReleaseCached();
}

/// <summary>A request would have allocated while <see cref="BufferPool.GrowthForbiddenBy"/> was set
/// (a CUDA graph capture: <see cref="StepGraphs"/> retries the capture at the key's next step).
/// An <see cref="InvalidOperationException"/>, as before it had its own type.</summary>
public sealed class PoolGrowthException(long bytes, string during)
    : InvalidOperationException($"the buffer pool would grow by {bytes} bytes during {during}")
{
    /// <summary>The size class that would have been allocated.</summary>
    public long Bytes { get; } = bytes;
}

/// <summary>A block rented from the pool; disposing it returns it (once).</summary>
public sealed class PooledBlock : IDisposable
{
    readonly BufferPool _pool;
    readonly BufferPool.Slot _slot;
    internal MemoryBuffer1D<byte, Stride1D.Dense> Buffer => _slot.Buffer;
    public long Bytes => _slot.Size;
    /// <summary>The pool's id of the block (its allocation order).</summary>
    public long Id => _slot.Id;
    public bool IsReturned { get; private set; }

    internal PooledBlock(BufferPool pool, BufferPool.Slot slot)
    {
        _pool = pool; _slot = slot;
    }

    /// <summary>The stream copies of this block go to: its device's <see cref="Device.Stream"/>.</summary>
    internal AcceleratorStream Stream => _pool.Stream;

    public MemoryBuffer1D<byte, Stride1D.Dense> Raw =>
        IsReturned ? throw new ObjectDisposedException("PooledBlock", "device buffer used after it was returned to the pool") : Buffer;

    public void Dispose()
    {
        if (IsReturned) return;
        IsReturned = true;
        _pool.Return(_slot);
    }
}
