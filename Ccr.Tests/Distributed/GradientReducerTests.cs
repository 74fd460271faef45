using Ccr.Nn;
using Ccr.Nn.Distributed;
using Ccr.Nn.Functional;
using Ccr.Nn.Modules;
using Ccr.Nn.Optim;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Distributed;

/// <summary>
/// The gradient reducer without MPI, against a stand-in communicator whose all-reduce returns
/// 3x the values (as if the other of two ranks held twice this rank's gradient), so the averaged
/// gradient must be exactly 1.5x the local one everywhere: every element reduced once, none
/// missed, none started before its last contribution (a weight used twice, a parameter no node
/// uses), buckets started in index order, the same with and without overlap.
/// </summary>
public class GradientReducerTests
{
    sealed class Tripling : ICommunicator
    {
        public readonly List<string> Calls = new();
        public int Rank => 0;
        public int Size => 2;
        public void AllReduce(Span<float> data, ReduceOp op, string what)
        {
            lock (Calls) Calls.Add(what);
            foreach (ref var v in data) v *= 3f;
        }
        public void AllReduce(Span<double> data, ReduceOp op, string what) => throw new NotSupportedException();
        public void AllReduce(Span<long> data, ReduceOp op, string what) => throw new NotSupportedException();
        public void Broadcast(Span<byte> data, int root, string what) { }
        public void Barrier(string what, TimeSpan? limit = null) { }
    }

    sealed class Net
    {
        public readonly Conv2d C1, C2, Head, Unused;
        public readonly BatchNorm2d Bn;
        public Net(Ccr.Kernels.Device d)
        {
            var rng = Rand.New(3);
            C1 = new Conv2d(d, rng, 2, 5, 3, padding: 1);
            Bn = new BatchNorm2d(d, 5);
            C2 = new Conv2d(d, rng, 5, 5, 3, padding: 1);
            Head = new Conv2d(d, rng, 5, 3, 1);
            Unused = new Conv2d(d, rng, 3, 3, 1);
        }
        public List<Tensor> Parameters() =>
            [.. C1.Parameters(), .. Bn.Parameters(), .. C2.Parameters(), .. Head.Parameters(), .. Unused.Parameters()];
        public Tensor Loss(Tensor x, Tensor upstream)
        {
            var h = F.Relu(Bn.Forward(C1.Forward(x)));
            h = F.Relu(C2.Forward(F.Relu(C2.Forward(h)))); // C2's weights are used twice
            return F.Sum(F.Mul(Head.Forward(h), upstream));
        }
    }

    [Fact]
    public void AveragedGradientsCoverTheArenaOnceInBucketOrder()
    {
        var d = Devices.Cpu;
        var net = new Net(d);
        using var arena = new ParameterArena(net.Parameters());
        var r = Rand.New(4);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, Rand.Floats(r, 2 * 2 * 6 * 7), 2, 2, 6, 7);
        var up = Tensor.FromArray(d, Rand.Floats(r, 2 * 3 * 6 * 7), 2, 3, 6, 7);

        arena.ZeroGrad();
        net.Loss(x, up).Backward();
        var local = arena.Grads.ToArray();
        Assert.Contains(local, v => v != 0);

        foreach (bool overlap in new[] { true, false })
        {
            var comm = new Tripling();
            using var reducer = new GradientReducer(arena, comm, bucketBytes: 40, overlap);
            Assert.Equal(overlap, reducer.Overlaps);
            var buckets = reducer.Buckets;
            Assert.True(buckets.Count > 3, $"{buckets.Count} buckets");
            // buckets tile the arena from its end backwards, whole parameters each
            long end = arena.Count;
            foreach (var (offset, count) in buckets)
            {
                Assert.Equal(end, offset + count);
                Assert.Contains(offset, arena.Offsets);
                end = offset;
            }
            Assert.Equal(0, end);
            // when a bucket starts, its gradients are final: nothing is added after the all-reduce
            var early = new List<string>();
            reducer.OnBucketStart = b =>
            {
                var (offset, count) = buckets[b];
                var now = arena.Grads.Data.Slice(offset, count).ToArray();
                if (!now.AsSpan().SequenceEqual(local.AsSpan((int)offset, (int)count))) early.Add($"bucket {b + 1}");
            };

            for (int pass = 1; pass <= 2; pass++)
            {
                comm.Calls.Clear();
                arena.ZeroGrad();
                reducer.Backward(net.Loss(x, up));
                Assert.Empty(early);
                var got = arena.Grads.ToArray();
                for (int i = 0; i < got.Length; i++)
                    Assert.True(got[i] == local[i] * 3f / 2f, $"overlap={overlap} pass {pass}: element {i}: {got[i]} != 1.5 * {local[i]}");
                Assert.Equal(Enumerable.Range(1, buckets.Count).Select(b => $"all-reduce of gradient bucket {b} of {buckets.Count} (backward pass {pass})"),
                             comm.Calls);
            }
        }
        net.C1.DisposeTensors(); net.Bn.DisposeTensors(); net.C2.DisposeTensors(); net.Head.DisposeTensors(); net.Unused.DisposeTensors();
    }

    [Fact]
    public void OneRankIsAPlainBackward()
    {
        var d = Devices.Cpu;
        var net = new Net(d);
        using var arena = new ParameterArena(net.Parameters());
        using var scope = new TensorScope();
        var r = Rand.New(5);
        var x = Tensor.FromArray(d, Rand.Floats(r, 2 * 6 * 7), 1, 2, 6, 7);
        var up = Tensor.FromArray(d, Rand.Floats(r, 3 * 6 * 7), 1, 3, 6, 7);
        arena.ZeroGrad();
        net.Loss(x, up).Backward();
        var want = arena.Grads.ToArray();
        using var reducer = new GradientReducer(arena, SingleProcess.Instance);
        Assert.False(reducer.Overlaps);
        arena.ZeroGrad();
        reducer.Backward(net.Loss(x, up));
        Assert.Equal(want, arena.Grads.ToArray());
        Assert.Null(Autograd.Observer);
    }
}
