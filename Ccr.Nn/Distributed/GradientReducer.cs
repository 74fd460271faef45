using System.Collections.Concurrent;
using System.Numerics.Tensors;
using Ccr.Nn.Optim;

namespace Ccr.Nn.Distributed;

/// <summary>
/// Averages the flat gradient arena over the ranks after every backward pass (PyTorch DDP's
/// reducer): the arena is cut into buckets of whole parameters, about <c>bucketBytes</c> each,
/// taken from the end of the arena (the parameters whose gradients the backward pass finishes
/// first), and each bucket is all-reduced (sum, then divided by the rank count) on its own
/// communicator.
/// <para>With <c>overlap</c> (host memory only: the CPU accelerator) a bucket's all-reduce runs on
/// a background thread as soon as every autograd node that feeds one of its parameters has run,
/// while the training thread continues the backward pass; buckets always start in index order,
/// so every rank issues the same collectives in the same order even when the ranks' graphs
/// differ (CCR draws its task pairs per rank). A parameter that no node of this pass uses (a CCR
/// projector of a pair this rank did not draw) is ready from the start, as with DDP's
/// find_unused_parameters: its gradient is the zero left by ZeroGrad. Without overlap (a GPU: Debian's Open MPI is not CUDA-aware, so a bucket is staged
/// through a host array) the buckets are reduced one after another once the backward pass is
/// done.</para>
/// The sum is the same on every rank (MPI reduces each element in one order and sends the result
/// to all), so the optimiser steps keep the ranks' parameters bit-identical.
/// </summary>
public sealed class GradientReducer : IBackwardObserver, IDisposable
{
    readonly ParameterArena _arena;
    readonly ICommunicator _comm;
    readonly (long Offset, long Count)[] _buckets;
    readonly int[] _bucketOf;                  // parameter index -> bucket
    readonly int[] _paramsIn;                  // bucket -> parameter count
    readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    readonly BlockingCollection<int>? _queue;
    readonly Thread? _thread;

    // per backward pass
    List<int>[] _readyAt = [];                 // node position -> parameters whose gradient is final after it
    int[] _pending = [];
    bool[] _ready = [];
    int _next;                                 // next bucket to start (buckets start in index order)
    int _done;
    Exception? _error;
    readonly object _lock = new();
    bool _inPass;

    public IReadOnlyList<(long Offset, long Count)> Buckets => _buckets;
    /// <summary>True when buckets are reduced on a background thread during the backward pass.</summary>
    public bool Overlaps { get; }
    /// <summary>Backward passes reduced so far (for messages).</summary>
    public long Passes { get; private set; }
    /// <summary>Called on the training thread as a bucket's all-reduce starts (tests check that
    /// its gradients are final by then).</summary>
    public Action<int>? OnBucketStart { get; set; }

    public GradientReducer(ParameterArena arena, ICommunicator comm, long bucketBytes = 25L << 20, bool overlap = true)
    {
        if (bucketBytes < 4) throw new ArgumentOutOfRangeException(nameof(bucketBytes), $"bucket of {bucketBytes} bytes");
        _arena = arena;
        _comm = comm;
        var ps = arena.Parameters;
        for (int i = 0; i < ps.Count; i++) _index[ps[i]] = i;
        _bucketOf = new int[ps.Count];
        var buckets = new List<(long, long)>();
        var counts = new List<int>();
        long end = arena.Count, size = 0;
        int inBucket = 0;
        for (int i = ps.Count - 1; i >= 0; i--)
        {
            _bucketOf[i] = buckets.Count;
            size += ps[i].Numel;
            inBucket++;
            if (size * sizeof(float) >= bucketBytes || i == 0)
            {
                long start = arena.Offsets[i];
                buckets.Add((start, end - start));
                counts.Add(inBucket);
                end = start; size = 0; inBucket = 0;
            }
        }
        _buckets = buckets.ToArray();
        _paramsIn = counts.ToArray();
        Overlaps = overlap && arena.Device.IsHostMemory && comm.Size > 1;
        if (Overlaps)
        {
            _queue = new BlockingCollection<int>();
            _thread = new Thread(CommLoop) { IsBackground = true, Name = "ccr-grad-allreduce" };
            _thread.Start();
        }
    }

    /// <summary>loss.Backward() with the gradients averaged over the ranks when it returns.</summary>
    public void Backward(Tensor loss)
    {
        if (_comm.Size == 1) { loss.Backward(); return; }
        Passes++;
        var previous = Autograd.Observer;
        Autograd.Observer = this;
        try
        {
            loss.Backward();
        }
        finally
        {
            Autograd.Observer = previous;
        }
        Finish();
    }

    public void Begin(IReadOnlyList<Tensor[]> nodeInputs)
    {
        var last = new int[_bucketOf.Length];
        Array.Fill(last, -1);
        for (int k = 0; k < nodeInputs.Count; k++)
            foreach (var t in nodeInputs[k])
                if (_index.TryGetValue(t, out int p)) last[p] = k;
        _readyAt = new List<int>[nodeInputs.Count];
        for (int p = 0; p < last.Length; p++)
            if (last[p] >= 0) (_readyAt[last[p]] ??= new()).Add(p);
        _pending = (int[])_paramsIn.Clone();
        _ready = new bool[_buckets.Length];
        _next = 0;
        _done = 0;
        _error = null;
        _inPass = true;
        for (int p = 0; p < last.Length; p++)
            if (last[p] < 0 && --_pending[_bucketOf[p]] == 0) _ready[_bucketOf[p]] = true; // unused in this pass
        if (Overlaps) StartReadyBuckets();
    }

    public void NodeDone(int position)
    {
        if (!_inPass || position >= _readyAt.Length || _readyAt[position] is not { } ps) return;
        foreach (int p in ps)
        {
            int b = _bucketOf[p];
            if (--_pending[b] == 0) _ready[b] = true;
        }
        if (Overlaps) StartReadyBuckets();
    }

    void StartReadyBuckets()
    {
        bool synced = false;
        while (_next < _buckets.Length && _ready[_next])
        {
            // The CPU accelerator may still be running the kernels that wrote this bucket.
            if (!synced) { _arena.Device.Accelerator.Synchronize(); synced = true; }
            OnBucketStart?.Invoke(_next);
            _queue!.Add(_next++);
        }
    }

    /// <summary>Reduces what the backward pass left (every bucket when nothing overlaps) and waits
    /// for all buckets; rethrows a failed collective as <see cref="DistributedException"/>.</summary>
    void Finish()
    {
        if (!_inPass) // the loss did not depend on any parameter: nothing was observed
            Begin([]);
        _inPass = false;
        Array.Fill(_ready, true);
        if (Overlaps)
        {
            StartReadyBuckets();
            lock (_lock)
                while (_done < _buckets.Length) Monitor.Wait(_lock);
            if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_error).Throw();
        }
        else
        {
            for (int b = 0; b < _buckets.Length; b++) { OnBucketStart?.Invoke(b); Reduce(b); }
        }
    }

    void CommLoop()
    {
        foreach (int b in _queue!.GetConsumingEnumerable())
        {
            try
            {
                if (_error == null) Reduce(b);
            }
            catch (Exception e)
            {
                _error = e;
            }
            lock (_lock) { _done++; Monitor.PulseAll(_lock); }
        }
    }

    void Reduce(int b)
    {
        var (offset, count) = _buckets[b];
        var buf = _arena.Grads.Data.Slice(offset, count);
        string what = $"all-reduce of gradient bucket {b + 1} of {_buckets.Length} (backward pass {Passes})";
        if (_arena.Device.IsHostMemory)
        {
            var span = buf.Span;
            _comm.AllReduce(span, ReduceOp.Sum, what);
            TensorPrimitives.Divide(span, (float)_comm.Size, span);
        }
        else
        {
            var host = buf.ToArray();
            _comm.AllReduce(host, ReduceOp.Sum, what);
            TensorPrimitives.Divide(host, (float)_comm.Size, host);
            buf.CopyFrom(host);
        }
    }

    public void Dispose()
    {
        _queue?.CompleteAdding();
        _thread?.Join();
        _queue?.Dispose();
    }
}
