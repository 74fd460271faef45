namespace Ccr.Training.Data;

public sealed record DataLoaderOptions
{
    public int BatchSize { get; init; } = 8;
    /// <summary>Shuffle the order each epoch (training); false keeps dataset order (evaluation).</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary>Augmentation for training; null = none (evaluation at full resolution).</summary>
    public AugmentOptions? Augment { get; init; }
    public bool DropLast { get; init; } = true;
    public ulong Seed { get; init; }
    /// <summary>Background threads that build batches.</summary>
    public int Workers { get; init; } = 2;
    /// <summary>Most batches built ahead of the consumer (the bounded queue).</summary>
    public int Prefetch { get; init; } = 4;
    /// <summary>What to do with a sample whose files turn out corrupt when loaded.</summary>
    public BadSamplePolicy Policy { get; init; } = BadSamplePolicy.Stop;
    /// <summary>[distributed] This process's rank and the rank count: each epoch's order is cut as
    /// PyTorch's DistributedSampler cuts it (Distributed/DistributedSampler.cs).</summary>
    public int ShardRank { get; init; } = 0;
    public int ShardCount { get; init; } = 1;
}

/// <summary>
/// Builds batches on background threads into a bounded queue. Every batch is a pure function of
/// (seed, epoch, batch index): the order is a permutation drawn from KeyedRng(seed, epoch), each
/// sample's augmentation from KeyedRng(seed, epoch, dataset index). So <see cref="Epoch"/> from any
/// start batch yields exactly the batches an uninterrupted run would, whatever the thread timing:
/// a resumed run is bit-for-bit the same. With <see cref="BadSamplePolicy.Skip"/> a sample that
/// fails to load is counted in <see cref="SkippedSamples"/> and replaced by the next one in the
/// epoch's order.
/// </summary>
public sealed class DataLoader
{
    private const ulong OrderStream = 0x0D3E5, AugmentStream = 0xA06;
    // Dataset index -> error message of every sample that failed to load (Skip policy).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, string> _bad = new();

    public IDataset Dataset { get; }
    public DataLoaderOptions Options { get; }
    /// <summary>Distinct samples that failed to load so far (each is tried once, then always replaced).</summary>
    public int SkippedSamples => _bad.Count;
    public IReadOnlyList<string> SkipMessages => _bad.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToList();

    public DataLoader(IDataset dataset, DataLoaderOptions options)
    {
        if (options.BatchSize < 1 || options.Workers < 1 || options.Prefetch < 1)
            throw new ArgumentException($"bad loader options {options}");
        Dataset = dataset;
        Options = options;
    }

    /// <summary>Samples this process reads per epoch (all of them, or its rank's share).</summary>
    public int SamplesPerEpoch => DataParallel.DistributedSampler.ShareLength(Dataset.Count, Options.ShardCount);

    public int BatchesPerEpoch => Options.DropLast
        ? SamplesPerEpoch / Options.BatchSize
        : (SamplesPerEpoch + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>The epoch's sample order (this rank's share of it).</summary>
    public int[] Order(int epoch)
    {
        var order = Options.Shuffle ? KeyedRng.From(Options.Seed, (ulong)epoch, OrderStream).Permutation(Dataset.Count)
                                    : Enumerable.Range(0, Dataset.Count).ToArray();
        return DataParallel.DistributedSampler.Shard(order, Options.ShardRank, Options.ShardCount);
    }

    /// <summary>Builds one batch synchronously: the same result as the background path.</summary>
    public Batch MakeBatch(int epoch, int batchIndex) => MakeBatch(epoch, batchIndex, Order(epoch));

    private Batch MakeBatch(int epoch, int batchIndex, int[] order)
    {
        int start = batchIndex * Options.BatchSize, end = Math.Min(order.Length, start + Options.BatchSize);
        if (start >= end) throw new ArgumentOutOfRangeException(nameof(batchIndex), $"batch {batchIndex} of {BatchesPerEpoch}");
        var samples = new List<Sample>(end - start);
        var indices = new List<int>(end - start);
        for (int k = start; k < end; k++)
        {
            var (sample, index) = LoadWithPolicy(order, k);
            if (Options.Augment != null)
            {
                var rng = KeyedRng.From(Options.Seed, (ulong)epoch, (ulong)index, AugmentStream);
                sample = Augment.Apply(sample, Options.Augment, ref rng);
            }
            samples.Add(sample);
            indices.Add(index);
        }
        return Batch.Stack(samples, indices);
    }

    private (Sample, int) LoadWithPolicy(int[] order, int k)
    {
        for (int attempt = 0; attempt < order.Length; attempt++)
        {
            int index = order[(k + attempt) % order.Length];
            if (_bad.ContainsKey(index)) continue;
            try
            {
                return (Dataset.Get(index), index);
            }
            catch (DataFileException e) when (Options.Policy == BadSamplePolicy.Skip)
            {
                _bad.TryAdd(index, e.Message);
            }
        }
        throw new InvalidOperationException($"dataset '{Dataset.Name}': no sample could be loaded");
    }

    /// <summary>
    /// The batches of an epoch from <paramref name="startBatch"/>, built ahead by
    /// <see cref="DataLoaderOptions.Workers"/> threads, at most <see cref="DataLoaderOptions.Prefetch"/>
    /// ahead of the consumer. A worker's exception is rethrown to the consumer. Stopping the
    /// enumeration early stops the workers.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int startBatch = 0)
    {
        int end = BatchesPerEpoch;
        if (startBatch >= end) yield break;
        int[] order = Order(epoch);
        using var queue = new Prefetcher(this, epoch, order, startBatch, end);
        for (int b = startBatch; b < end; b++) yield return queue.Take(b);
    }

    /// <summary>Workers claim batch indices in increasing order after taking a free slot.</summary>
    private sealed class Prefetcher : IDisposable
    {
        private readonly DataLoader _loader;
        private readonly int _epoch, _end;
        private readonly int[] _order;
        private readonly Dictionary<int, Batch> _ready = [];
        private readonly SemaphoreSlim _slots;
        private readonly CancellationTokenSource _cts = new();
        private readonly Thread[] _threads;
        private int _next;
        private Exception? _error;

        public Prefetcher(DataLoader loader, int epoch, int[] order, int start, int end)
        {
            _loader = loader;
            _epoch = epoch;
            _order = order;
            _end = end;
            _next = start;
            _slots = new SemaphoreSlim(loader.Options.Prefetch, loader.Options.Prefetch);
            _threads = new Thread[Math.Min(loader.Options.Workers, end - start)];
            for (int i = 0; i < _threads.Length; i++)
            {
                _threads[i] = new Thread(Work) { IsBackground = true, Name = $"ccr-loader-{i}" };
                _threads[i].Start();
            }
        }

        private void Work()
        {
            try
            {
                while (true)
                {
                    _slots.Wait(_cts.Token);
                    int b = Interlocked.Increment(ref _next) - 1;
                    if (b >= _end) { _slots.Release(); return; }
                    var batch = _loader.MakeBatch(_epoch, b, _order);
                    lock (_ready) { _ready[b] = batch; Monitor.PulseAll(_ready); }
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                lock (_ready) { _error ??= e; Monitor.PulseAll(_ready); }
            }
        }

        public Batch Take(int b)
        {
            lock (_ready)
            {
                while (true)
                {
                    if (_ready.Remove(b, out var batch)) { _slots.Release(); return batch; }
                    // The worker's own exception (a DataFileException names the file) with its stack trace.
                    if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_error).Throw();
                    Monitor.Wait(_ready);
                }
            }
        }

        public void Dispose()
        {
            _cts.Cancel();
            foreach (var t in _threads) t.Join();
            _cts.Dispose();
            _slots.Dispose();
        }
    }
}
