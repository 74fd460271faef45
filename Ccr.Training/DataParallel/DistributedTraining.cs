using System.Globalization;
using Ccr.Nn;
using Ccr.Nn.Distributed;
using Ccr.Nn.IO;
using Ccr.Nn.Modules;

namespace Ccr.Training.DataParallel;

/// <summary>
/// What data-parallel training adds to a <see cref="TrainSession"/> and its <see cref="Trainer"/>
/// (each call is a no-op for one process, apart from the checkpoint bookkeeping):
/// rank 0's initial parameters and buffers for every rank, synchronised batch norm, the gradient
/// reducer, log rows averaged over the ranks, rank 0's running statistics before evaluation,
/// checkpoints that record the rank layout and every rank's CCR sampling RNG, and resuming with
/// another rank count. CCR itself runs per rank: each rank draws its own task pairs and anchors
/// from its own batch (rank r's RNG is derived from rank 0's), and the regulariser's gradients are
/// averaged with the rest.
/// </summary>
public static class DistributedTraining
{
    /// <summary>Called by the session once its arena and optimiser exist.</summary>
    public static void Attach(TrainSession s)
    {
        var d = s.Dist;
        if (!d.IsDistributed) return;
        d.Fault = FaultInjection.FromEnvironment(); // once: a malformed CCR_FAULT stops every rank here, before training
        ShareParameters(s);
        // The model's norms only: CCR's projectors see different task pairs on different ranks.
        int synced = s.Config.Distributed.SyncBn ? BatchNormSync.Attach(s.Model, d.Comm) : 0;
        if (s.CcrLoss != null && d.Rank > 0) s.CcrLoss.SamplingRng = RankRng(s.CcrLoss.SamplingRng, d.Rank);
        var c = s.Config.Distributed;
        if (!(c.BucketMb > 0)) throw new ConfigException($"distributed.bucket_mb must be > 0, got {c.BucketMb}");
        bool overlap = c.Overlap && (d.Runtime?.ThreadMultiple ?? false);
        d.Reducer = new GradientReducer(s.Arena, d.GradComm, (long)(c.BucketMb * (1 << 20)), overlap);
        if (d.IsPrimary)
            Console.WriteLine($"distributed: batch {s.Config.Train.BatchSize} per rank, global batch {s.Config.Train.BatchSize * d.Size}; " +
                $"{d.Reducer.Buckets.Count} gradient bucket(s) of <= {c.BucketMb} MiB, " +
                (d.Reducer.Overlaps ? "all-reduced during the backward pass" : "all-reduced after the backward pass") +
                (synced > 0 ? $"; {synced} synchronised batch norms" : "; batch norm statistics per rank"));
    }

    /// <summary>Rank 0's parameters and buffers on every rank (after building the model, and again
    /// after rank 0 alone has loaded pretrained weights).</summary>
    public static void ShareParameters(TrainSession s)
    {
        if (!s.Dist.IsDistributed) return;
        BroadcastTensors(s.Dist.Comm, [s.Arena.Values], "rank 0's initial parameters");
        BroadcastTensors(s.Dist.Comm, Buffers(s.Root), "rank 0's initial buffers");
    }

    /// <summary>loss.Backward(), then the gradients averaged over the ranks.</summary>
    public static void Backward(TrainSession s, Tensor loss)
    {
        if (s.Dist.Reducer is { } r) r.Backward(loss);
        else loss.Backward();
    }

    /// <summary>Rank r's CCR sampling generator, derived from rank 0's.</summary>
    public static Rng RankRng(Rng rank0, int rank) =>
        rank == 0 ? rank0 : new Rng(rank0.State ^ (0x9E3779B97F4A7C15UL * (ulong)rank), 77 + (ulong)rank);

    /// <summary>The stop requested on any rank ("SIGTERM" over "Ctrl-C"), or null; every rank calls
    /// it at the same points of the loop.</summary>
    public static string? AgreeOnStop(TrainSession s, string? local)
    {
        var v = new[] { local == "SIGTERM" ? 2.0 : local != null ? 1.0 : 0.0 };
        s.Dist.Comm.AllReduce(v, ReduceOp.Max, "whether a rank was asked to stop");
        return v[0] switch { >= 2 => "SIGTERM", >= 1 => "Ctrl-C", _ => null };
    }

    /// <summary>A log row as the mean over the ranks (images/s summed, memory the largest); every
    /// rank calls it on the same steps.</summary>
    public static void ReduceRow(TrainSession s, Dictionary<string, double> row)
    {
        var d = s.Dist;
        if (!d.IsDistributed) return;
        // step, epoch and lr are the same on every rank: left as they are
        var keys = row.Keys.Where(k => k is not ("memory_mb" or "step" or "epoch" or "lr")).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var v = keys.Select(k => row[k]).ToArray();
        d.Comm.AllReduce(v, ReduceOp.Sum, "log row");
        for (int i = 0; i < keys.Length; i++) row[keys[i]] = keys[i] == "images_per_s" ? v[i] : v[i] / d.Size;
        if (row.TryGetValue("memory_mb", out double mem))
        {
            var m = new[] { mem };
            d.Comm.AllReduce(m, ReduceOp.Max, "log row memory");
            row["memory_mb"] = m[0];
        }
    }

    /// <summary>Rank 0's buffers (batch-norm running statistics) on every rank, as PyTorch DDP's
    /// broadcast_buffers: before evaluation, so every shard is scored by the model rank 0 saves.</summary>
    public static void ShareBuffers(TrainSession s)
    {
        if (s.Dist.IsDistributed) BroadcastTensors(s.Dist.Comm, Buffers(s.Root), "rank 0's buffers before evaluation");
    }

    /// <summary>Collective: the checkpoint metadata of the rank layout and every rank's CCR RNG.</summary>
    public static Dictionary<string, string> CheckpointExtra(TrainSession s)
    {
        var d = s.Dist;
        var extra = new Dictionary<string, string>
        {
            ["world_size"] = d.Size.ToString(CultureInfo.InvariantCulture),
            ["global_batch"] = (s.Config.Train.BatchSize * d.Size).ToString(CultureInfo.InvariantCulture),
            ["steps_per_epoch"] = s.Loader.BatchesPerEpoch.ToString(CultureInfo.InvariantCulture),
        };
        // The ranks' parameters must be bit-identical; a difference is a bug (say, a collective
        // that is not deterministic), so stop rather than save one rank's diverged copy.
        var hashes = new long[d.Size];
        hashes[d.Rank] = (long)ParameterHash(s);
        d.Comm.AllReduce(hashes, ReduceOp.Sum, "comparing the ranks' parameters");
        extra["param_hash"] = string.Join(";", hashes.Select(h => ((ulong)h).ToString("x16", CultureInfo.InvariantCulture)));
        if (hashes.Distinct().Count() > 1)
            throw new DistributedException($"rank {d.Rank}: the ranks' parameters differ (FNV-1a hashes {extra["param_hash"]}); " +
                                           "the data-parallel copies have diverged");
        if (s.CcrLoss != null)
        {
            var all = new long[2 * d.Size];
            all[2 * d.Rank] = (long)s.CcrLoss.SamplingRng.State;
            all[2 * d.Rank + 1] = (long)s.CcrLoss.SamplingRng.Inc;
            d.Comm.AllReduce(all, ReduceOp.Sum, "gathering the ranks' CCR RNG states");
            extra["ccr_rng"] = string.Join(";", Enumerable.Range(0, d.Size).Select(r => $"{(ulong)all[2 * r]}:{(ulong)all[2 * r + 1]}"));
        }
        return extra;
    }

    /// <summary>
    /// After rank 0 has loaded last.ckpt (<paramref name="state"/>; null on the other ranks): maps
    /// the step to this run's rank count and global batch when they differ from the checkpoint's
    /// (same epoch, same position in it; the optimiser's own step count is unchanged) and sends
    /// rank 0's parameters, buffers, optimiser state and counters to every rank. Returns the step
    /// and best metric to continue from.
    /// </summary>
    public static (long Step, double Best) ShareResume(TrainSession s, TrainingState? state, long step, double best, Action<string> print)
    {
        var d = s.Dist;
        var opt = s.Optimizer;
        var norms = Modules(s.Root).OfType<BatchNorm2d>().ToArray();
        var rng = new long[2 * d.Size];
        if (d.IsPrimary)
        {
            if (state == null) throw new ArgumentNullException(nameof(state), "rank 0 resumes from a checkpoint");
            step = MapStep(s, state, step, print);
            var saved = Parse(state.Extra.GetValueOrDefault("ccr_rng"));
            int savedWorld = int.TryParse(state.Extra.GetValueOrDefault("world_size"), out int w) ? w : 1;
            for (int r = 0; r < d.Size; r++)
            {
                var g = savedWorld == d.Size && r < saved.Count ? new Rng(saved[r].State, saved[r].Inc, raw: true)
                      : RankRng(state.RestoreRng(), r);
                rng[2 * r] = (long)g.State;
                rng[2 * r + 1] = (long)g.Inc;
            }
        }
        if (!d.IsDistributed) return (step, best);
        var scalars = new double[3 + norms.Length];
        scalars[0] = step; scalars[1] = best; scalars[2] = opt.Step;
        for (int i = 0; i < norms.Length; i++) scalars[3 + i] = norms[i].NumBatchesTracked;
        d.Comm.Broadcast<double>(scalars, 0, "rank 0's resumed counters");
        d.Comm.Broadcast<long>(rng, 0, "rank 0's resumed RNG states");
        BroadcastTensors(d.Comm, [s.Arena.Values], "rank 0's resumed parameters");
        BroadcastTensors(d.Comm, Buffers(s.Root), "rank 0's resumed buffers");
        var optTensors = opt.StateTensors();
        BroadcastTensors(d.Comm, optTensors.Select(t => t.Value).ToList(), "rank 0's resumed optimiser state");
        if (!d.IsPrimary)
        {
            opt.LoadState((long)scalars[2], optTensors.ToDictionary(t => t.Name, t => t.Value.ToArray()));
            for (int i = 0; i < norms.Length; i++) norms[i].NumBatchesTracked = (long)scalars[3 + i];
        }
        if (s.CcrLoss != null) s.CcrLoss.SamplingRng = new Rng((ulong)rng[2 * d.Rank], (ulong)rng[2 * d.Rank + 1], raw: true);
        return ((long)scalars[0], scalars[1]);
    }

    static long MapStep(TrainSession s, TrainingState state, long step, Action<string> print)
    {
        int batch = s.Config.Train.BatchSize;
        int oldWorld = int.TryParse(state.Extra.GetValueOrDefault("world_size"), out int w) ? w : 1;
        long oldGlobal = long.TryParse(state.Extra.GetValueOrDefault("global_batch"), out long g) ? g : batch;
        long oldPerEpoch = long.TryParse(state.Extra.GetValueOrDefault("steps_per_epoch"), out long p) ? p : s.Loader.BatchesPerEpoch;
        long newGlobal = (long)batch * s.Dist.Size, newPerEpoch = s.Loader.BatchesPerEpoch;
        if (oldGlobal == newGlobal && oldPerEpoch == newPerEpoch) return step;
        if (oldPerEpoch <= 0) throw new InvalidDataException($"checkpoint metadata steps_per_epoch = {oldPerEpoch}");
        long epoch = step / oldPerEpoch, within = step % oldPerEpoch;
        long mapped = epoch * newPerEpoch + Math.Min(newPerEpoch, within * oldGlobal / newGlobal);
        print($"resuming a run of {oldWorld} rank(s) with global batch {oldGlobal} on {s.Dist.Size} rank(s) with global batch {newGlobal}: " +
              $"step {step} (epoch {epoch}, {within} of {oldPerEpoch} steps in) becomes step {mapped} of {newPerEpoch} per epoch");
        return mapped;
    }

    /// <summary>FNV-1a (64 bit) of the parameter arena's bytes, in arena order.</summary>
    public static ulong ParameterHash(TrainSession s) => Fnv1a(System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.Arena.Values.ToArray().AsSpan()));

    public static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in bytes) { h ^= b; h *= 1099511628211UL; }
        return h;
    }

    static List<(ulong State, ulong Inc)> Parse(string? text)
    {
        var r = new List<(ulong, ulong)>();
        if (string.IsNullOrEmpty(text)) return r;
        foreach (var part in text.Split(';'))
        {
            var kv = part.Split(':');
            if (kv.Length != 2 || !ulong.TryParse(kv[0], CultureInfo.InvariantCulture, out ulong st)
                || !ulong.TryParse(kv[1], CultureInfo.InvariantCulture, out ulong inc)) return new();
            r.Add((st, inc));
        }
        return r;
    }

    static IEnumerable<Module> Modules(Module root)
    {
        yield return root;
        foreach (var (_, c) in root.Children())
            foreach (var m in Modules(c)) yield return m;
    }

    // every buffer: the float running statistics and CCR's int32 stream counter (rng_counter)
    static List<Tensor> Buffers(Module root) => root.NamedBuffers().Select(b => b.Tensor).ToList();

    /// <summary>Rank 0's values of <paramref name="tensors"/> (float32, or int32 moved as their bits)
    /// on every rank, in one broadcast staged through a host array.</summary>
    public static void BroadcastTensors(ICommunicator comm, IReadOnlyList<Tensor> tensors, string what)
    {
        if (comm.Size == 1 || tensors.Count == 0) return;
        long total = tensors.Sum(t => t.Numel);
        var host = new float[total];
        long o = 0;
        if (comm.Rank == 0)
            foreach (var t in tensors)
            {
                var v = t.DType == DType.F32 ? t.ToArray() : System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(t.ToIntArray()).ToArray();
                v.CopyTo(host, o);
                o += t.Numel;
            }
        comm.Broadcast<float>(host, 0, what);
        if (comm.Rank == 0) return;
        o = 0;
        foreach (var t in tensors)
        {
            var part = host.AsSpan((int)o, (int)t.Numel);
            if (t.DType == DType.F32) t.Data.CopyFrom(part);
            else t.IntData.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(part));
            o += t.Numel;
        }
    }

    /// <summary>Test hook: the fault <c>CCR_FAULT</c> asked for (<see cref="FaultInjection"/>, read
    /// when the session was built), if it falls on this rank before this step. Ignored by a single process.</summary>
    public static void BeforeStep(TrainSession s, long step)
    {
        if (s.Dist.IsDistributed) s.Dist.Fault?.Strike(s.Dist.Rank, step);
    }
}
