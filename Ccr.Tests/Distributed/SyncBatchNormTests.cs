using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Nn.Distributed;
using Ccr.Nn.Modules;
using Ccr.Tests.Common;
using Xunit;
using BnRef = Ccr.Kernels.Ops.BatchNorm.Reference;
using Ref = Ccr.Kernels.Ops.SyncBatchNorm.Reference;

namespace Ccr.Tests.Distributed;

/// <summary>
/// Synchronised batch norm without MPI: the float64 references of its pieces reproduce batch
/// norm's backward (itself checked by finite differences and PyTorch), plain and fused with a
/// residual add and ReLU, when the batch is split into two shards whose sums are added; the kernels
/// match the references on both variants at awkward shapes; and the module path
/// (<see cref="BatchNormSync"/>) with one rank equals the plain BatchNorm2d (also its fused
/// ForwardRelu), and with a stand-in for a second rank holding the same batch uses the doubled count.
/// </summary>
public class SyncBatchNormTests
{
    const double Eps = 1e-5;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ShardedReferenceSumsGiveTheWholeBatchBackward(bool reluWithResidual)
    {
        var r = Rand.New(11);
        int n = 4, c = 3, hw = 5, len = n * c * hw;
        var x = Rand.D(Rand.Floats(r, len, -1f, 3f));
        var dy = Rand.D(Rand.Floats(r, len));
        var w = Rand.D(Rand.Floats(r, c, 0.5f, 1.5f));
        var bias = Rand.D(Rand.Floats(r, c));
        var res = reluWithResidual ? Rand.D(Rand.Floats(r, len)) : null;
        var fwd = BnRef.ForwardTraining(x, w, bias, new double[c], new double[c], n, c, hw, 0, Eps, res, reluWithResidual);
        var whole = BnRef.BackwardTraining(dy, x, w, bias, n, c, hw, Eps, res, reluWithResidual);
        // dz = dy through the ReLU; each shard (1 and 3 images) sums dz and dz * xhat with the
        // global statistics, the sums are added, and each shard's dx follows
        var dz = dy.Select((g, k) => !reluWithResidual || fwd.Y[k] > 0 ? g : 0).ToArray();
        var sdz = new double[c];
        var sdzx = new double[c];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < hw; i++)
                {
                    int k = (b * c + ch) * hw + i;
                    sdz[ch] += dz[k];
                    sdzx[ch] += dz[k] * (x[k] - fwd.Mean[ch]) * fwd.InvStd[ch];
                }
        int split = 1 * c * hw;
        var dxa = Ref.BackwardDx(dz[..split], x[..split], fwd.Mean, fwd.InvStd, w, sdz, sdzx, n * hw, 1, c, hw);
        var dxb = Ref.BackwardDx(dz[split..], x[split..], fwd.Mean, fwd.InvStd, w, sdz, sdzx, n * hw, 3, c, hw);
        Tol.Close(whole.Dx, [.. dxa, .. dxb], 1e-12, 1e-10, "sharded dx");
        if (reluWithResidual) Tol.Close(whole.Dresidual!, dz, 1e-12, 1e-10, "dresidual = dz");
        Tol.Close(whole.Dbias, sdz, 1e-12, 1e-10, "dbias = sum dz");
        Tol.Close(whole.Dweight, sdzx, 1e-12, 1e-10, "dweight = sum dz xhat");

        // and the squared deviations of the shards add up to the batch variance
        var ss = Ref.SquaredDeviation(x[..split], fwd.Mean, 1, c, hw).Zip(Ref.SquaredDeviation(x[split..], fwd.Mean, 3, c, hw), (p, q) => p + q);
        Tol.Close(fwd.InvStd, ss.Select(v => 1 / Math.Sqrt(v / (n * hw) + Eps)).ToArray(), 1e-12, 1e-10, "sharded invstd");
    }

    public static TheoryData<string, int, int, int, int> Shapes()
    {
        var t = new TheoryData<string, int, int, int, int>();
        foreach (var dev in new[] { "cpu", "cuda-on-cpu" })
            foreach (var (n, c, h, w) in new[] { (1, 1, 1, 2), (2, 3, 5, 7), (3, 5, 4, 33), (1, 2, 17, 1) })
                t.Add(dev, n, c, h, w);
        return t;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheirReferences(string device, int n, int c, int h, int w)
    {
        var d = Devices.Get(device);
        var r = Rand.New(n * 1000 + c * 100 + h * 10 + w);
        int hw = h * w;
        long len = (long)n * c * hw;
        var x = Rand.Floats(r, len, -1.5f, 2.5f);
        var dy = Rand.Floats(r, len);
        var mean = Rand.Floats(r, c, 0f, 1f);      // any mean: a shard's mean is not the global one
        var invstd = Rand.Floats(r, c, 0.5f, 2f);
        var weight = Rand.Floats(r, c, 0.5f, 1.5f);
        var sdz = Rand.Floats(r, c, -3f, 3f);
        var sdzx = Rand.Floats(r, c, -3f, 3f);
        long count = 3L * n * hw;                  // as if two more ranks held the same amount
        string what = $"{device} {n}x{c}x{h}x{w}";
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w);
        var tdy = Tensor.FromArray(d, dy, n, c, h, w);
        var tm = Tensor.FromArray(d, mean, c);

        var ss = Tensor.Empty(d, c);
        SyncBatchNorm.SquaredDeviation(d, ss.Data, tx.Data, tm.Data, n, c, hw);
        Tol.Close(Ref.SquaredDeviation(Rand.D(x), Rand.D(mean), n, c, hw), ss.ToArray(), 1e-4, 1e-4, what + " squared deviation");

        var dx = Tensor.Empty(d, n, c, h, w);
        SyncBatchNorm.BackwardDx(d, dx.Data, tdy.Data, tx.Data, tm.Data, Tensor.FromArray(d, invstd, c).Data,
                                 Tensor.FromArray(d, weight, c).Data, Tensor.FromArray(d, sdz, c).Data,
                                 Tensor.FromArray(d, sdzx, c).Data, count, n, c, hw);
        var rdx = Ref.BackwardDx(Rand.D(dy), Rand.D(x), Rand.D(mean), Rand.D(invstd), Rand.D(weight), Rand.D(sdz), Rand.D(sdzx),
                                 count, n, c, hw);
        Tol.Close(rdx, dx.ToArray(), 1e-5, 1e-4, what + " dx");
    }

    [Fact]
    public void BadShapesAreRefusedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 2, 3, 2, 2);
        var c3 = Tensor.Zeros(d, 3);
        var c2 = Tensor.Zeros(d, 2);
        var e = Assert.Throws<ArgumentException>(() => SyncBatchNorm.SquaredDeviation(d, c2.Data, x.Data, c3.Data, 2, 3, 4));
        Assert.Contains("ss has 2 elements", e.Message);
        Assert.Throws<ArgumentException>(() => SyncBatchNorm.BackwardDx(d, x.Data, x.Data, x.Data, c3.Data, c2.Data,
            c3.Data, c3.Data, c3.Data, 8, 2, 3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyncBatchNorm.BackwardDx(d, x.Data, x.Data, x.Data, c3.Data, c3.Data,
            c3.Data, c3.Data, c3.Data, 0, 2, 3, 4));
    }

    /// <summary>Every all-reduce multiplies by the rank count: the result of ranks that all hold
    /// this rank's values.</summary>
    sealed class Replicated(int size) : ICommunicator
    {
        public int Rank => 0;
        public int Size => size;
        public void AllReduce(Span<float> data, ReduceOp op, string what) { if (op == ReduceOp.Sum) foreach (ref var v in data) v *= size; }
        public void AllReduce(Span<double> data, ReduceOp op, string what) { if (op == ReduceOp.Sum) foreach (ref var v in data) v *= size; }
        public void AllReduce(Span<long> data, ReduceOp op, string what) { if (op == ReduceOp.Sum) foreach (ref var v in data) v *= size; }
        public void Broadcast(Span<byte> data, int root, string what) { }
        public void Barrier(string what, TimeSpan? limit = null) { }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void SyncedModuleEqualsBatchNormOfTheCombinedBatch(int ranks)
    {
        var d = Devices.Cpu;
        var r = Rand.New(5 + ranks);
        int n = 2, c = 3, h = 4, w = 5, hw = h * w;
        var x = Rand.Floats(r, n * c * hw, -1f, 3f);
        var dy = Rand.Floats(r, n * c * hw);
        var gamma = Rand.Floats(r, c, 0.5f, 1.5f);
        var beta = Rand.Floats(r, c);

        BatchNorm2d Make(IBatchNormSync? sync)
        {
            var bn = new BatchNorm2d(d, c);
            bn.Weight.Data.CopyFrom(gamma);
            bn.Bias.Data.CopyFrom(beta);
            bn.Sync = sync;
            return bn;
        }
        (float[] Y, float[] Dx, float[] Dw, float[] Db, float[] Rm, float[] Rv) Run(BatchNorm2d bn, float[] xs, float[] gs, int batch)
        {
            using var scope = new TensorScope();
            var tx = Tensor.FromArray(d, xs, batch, c, h, w);
            tx.RequiresGrad = true;
            var y = bn.Forward(tx);
            y.Backward(Tensor.FromArray(d, gs, batch, c, h, w));
            var result = (y.ToArray(), tx.Grad!.ToArray(), bn.Weight.Grad!.ToArray(), bn.Bias.Grad!.ToArray(),
                          bn.RunningMean.ToArray(), bn.RunningVar.ToArray());
            tx.Grad.Dispose();
            return result;
        }

        var synced = Make(new BatchNormSync(ranks == 1 ? SingleProcess.Instance : new Replicated(ranks), "bn"));
        var got = Run(synced, x, dy, n);
        // the combined batch: this rank's images repeated for every rank, the upstream gradient too
        var plain = Make(null);
        var xs = Enumerable.Repeat(x, ranks).SelectMany(a => a).ToArray();
        var gs = Enumerable.Repeat(dy, ranks).SelectMany(a => a).ToArray();
        var want = Run(plain, xs, gs, n * ranks);

        Tol.Close(Rand.D(want.Y[..x.Length]), got.Y, 1e-5, 1e-5, "y");
        Tol.Close(Rand.D(want.Dx[..x.Length]), got.Dx, 1e-5, 1e-4, "dx");
        // parameter gradients: this rank's share; the gradient all-reduce averages them
        Tol.Close(Rand.D(want.Dw).Select(v => v / ranks).ToArray(), got.Dw, 1e-5, 1e-4, "dweight");
        Tol.Close(Rand.D(want.Db).Select(v => v / ranks).ToArray(), got.Db, 1e-5, 1e-4, "dbias");
        Tol.Close(Rand.D(want.Rm), got.Rm, 1e-6, 1e-5, "running mean");
        Tol.Close(Rand.D(want.Rv), got.Rv, 1e-6, 1e-5, "running var (unbiased over the combined count)");
        Assert.Equal(1, synced.NumBatchesTracked);
        synced.DisposeTensors();
        plain.DisposeTensors();
    }

    [Fact]
    public void SyncedFusedReluPathEqualsTheFusedOp()
    {
        var d = Devices.Cpu;
        var r = Rand.New(8);
        int n = 2, c = 4, h = 3, w = 5;
        var x = Rand.Floats(r, n * c * h * w, -1f, 2f);
        var res = Rand.Floats(r, n * c * h * w);
        var dy = Rand.Floats(r, n * c * h * w);
        (float[] Y, float[] Dx, float[] Dres, long Tracked) Run(IBatchNormSync? sync)
        {
            var bn = new BatchNorm2d(d, c) { Sync = sync };
            using var scope = new TensorScope();
            var tx = Tensor.FromArray(d, x, n, c, h, w);
            var tr = Tensor.FromArray(d, res, n, c, h, w);
            tx.RequiresGrad = true; tr.RequiresGrad = true;
            var y = bn.ForwardRelu(tx, tr);
            y.Backward(Tensor.FromArray(d, dy, n, c, h, w));
            var result = (y.ToArray(), tx.Grad!.ToArray(), tr.Grad!.ToArray(), bn.NumBatchesTracked);
            tx.Grad.Dispose(); tr.Grad.Dispose();
            bn.DisposeTensors();
            return result;
        }
        var want = Run(null);
        var got = Run(new BatchNormSync(SingleProcess.Instance, "bn"));
        Tol.Close(Rand.D(want.Y), got.Y, 1e-5, 1e-5, "relu(bn(x) + residual)");
        Tol.Close(Rand.D(want.Dx), got.Dx, 1e-5, 1e-4, "dx");
        Tol.Close(Rand.D(want.Dres), got.Dres, 1e-6, 1e-6, "dresidual");
        Assert.Equal(want.Tracked, got.Tracked);
    }
}
