using System.Text.Json;
using Ccr.Training.Data;
using Ccr.Training.DataParallel;
using Xunit;

namespace Ccr.Tests.Distributed;

/// <summary>The distributed sampler against PyTorch's DistributedSampler (tools/golden_sampler.py),
/// and the property the trainer relies on: the k-th batches of all ranks together are the k-th
/// batch of one process with the combined batch size.</summary>
public class DistributedSamplerTests
{
    sealed record Case(int Count, int World, int[][] Ranks);

    static List<Case> Golden()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "distributed", "sampler.json")));
        return doc.RootElement.EnumerateArray().Select(e => new Case(e.GetProperty("count").GetInt32(), e.GetProperty("world").GetInt32(),
            e.GetProperty("ranks").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray())).ToList();
    }

    [Fact]
    public void SharesMatchPyTorch()
    {
        var cases = Golden();
        Assert.True(cases.Count >= 8);
        foreach (var c in cases)
        {
            var identity = Enumerable.Range(0, c.Count).ToArray();
            var perm = identity.Select(i => (i * 7 + 3) % c.Count).ToArray(); // any epoch order
            if (c.Count > 1 && 7 % c.Count == 0) perm = identity.Reverse().ToArray();
            for (int r = 0; r < c.World; r++)
            {
                Assert.Equal(c.Ranks[r], DistributedSampler.Shard(identity, r, c.World));
                Assert.Equal(c.Ranks[r].Select(i => perm[i]), DistributedSampler.Shard(perm, r, c.World));
                Assert.Equal(c.Ranks[r].Length, DistributedSampler.ShareLength(c.Count, c.World));
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributedSampler.Shard([1, 2], 2, 2));
    }

    [Fact]
    public void RankBatchesTogetherAreTheCombinedBatch()
    {
        var ds = new SynthRoomsDataset("train", 14, 16, 16, seed: 0);
        const int world = 2, batch = 3;
        var single = new DataLoader(ds, new DataLoaderOptions { BatchSize = world * batch, Seed = 9, Workers = 1 });
        var ranks = Enumerable.Range(0, world).Select(r => new DataLoader(ds, new DataLoaderOptions
        {
            BatchSize = batch, Seed = 9, Workers = 1, ShardRank = r, ShardCount = world,
        })).ToArray();
        Assert.All(ranks, l => Assert.Equal(single.BatchesPerEpoch, l.BatchesPerEpoch)); // 14 / 6 = 2 = 7 / 3
        for (int epoch = 0; epoch < 2; epoch++)
            for (int b = 0; b < single.BatchesPerEpoch; b++)
            {
                var want = single.MakeBatch(epoch, b).Indices.Order();
                var got = ranks.SelectMany(l => l.MakeBatch(epoch, b).Indices).Order();
                Assert.Equal(want, got);
            }
    }
}
