namespace Ccr.Training.DataParallel;

/// <summary>
/// torch.utils.data.DistributedSampler with drop_last=False: every rank draws the same epoch
/// order (same seed and epoch), the order is padded by repeating its beginning until its length
/// divides by the rank count, and rank r takes positions r, r + N, r + 2N, ... So the ranks'
/// shares are disjoint apart from the padding, and equally long: ceil(count / N) each. With B per
/// rank, the k-th batches of all ranks together are the order's positions [kNB, (k+1)NB): the
/// k-th batch a single process with batch N * B would take.
/// </summary>
public static class DistributedSampler
{
    /// <summary>Samples per rank: ceil(count / world).</summary>
    public static int ShareLength(int count, int world) => (count + world - 1) / world;

    /// <summary>Rank <paramref name="rank"/>'s share of <paramref name="order"/>.</summary>
    public static int[] Shard(int[] order, int rank, int world)
    {
        if (world < 1 || rank < 0 || rank >= world)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} of {world}");
        if (world == 1) return order;
        if (order.Length == 0) return order;
        int per = ShareLength(order.Length, world);
        var share = new int[per];
        // padded[i] = order[i % length] (PyTorch repeats the whole list when the padding is longer)
        for (int k = 0; k < per; k++) share[k] = order[(rank + k * world) % order.Length];
        return share;
    }
}
