namespace Ccr.Training.Config;

/// <summary>
/// Data-parallel training under mpirun (<c>distributed:</c> in the YAML). Ignored by a single
/// process. train.batch_size is per rank: N ranks train with a global batch of N * batch_size.
/// </summary>
public sealed record DistributedConfig
{
    /// <summary>Batch-norm statistics over every rank's batch (SyncBatchNorm); false keeps each
    /// rank's own (the default, as PyTorch DDP). CCR's projector norms stay per rank either way.</summary>
    public bool SyncBn { get; init; } = false;
    /// <summary>Gradient all-reduce bucket size in MiB (PyTorch DDP's bucket_cap_mb).</summary>
    public float BucketMb { get; init; } = 25f;
    /// <summary>All-reduce buckets during the backward pass (CPU accelerator only; on a GPU the
    /// buckets are reduced after it).</summary>
    public bool Overlap { get; init; } = true;
    /// <summary>Seconds a collective may wait for the other ranks before this rank stops the job
    /// (a peer that died, hangs or is far behind).</summary>
    public float TimeoutS { get; init; } = 300f;
}
