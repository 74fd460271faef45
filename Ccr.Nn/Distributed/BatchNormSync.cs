using Ccr.Kernels;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Distributed;

/// <summary>What a <see cref="BatchNorm2d"/> in training mode calls instead of its own batch
/// statistics when <see cref="BatchNorm2d.Sync"/> is set.</summary>
public interface IBatchNormSync
{
    Tensor Forward(BatchNorm2d bn, Tensor x);
}

/// <summary>
/// Synchronised batch norm (torch.nn.SyncBatchNorm): the statistics of a training step are those
/// of the whole batch over every rank, so N ranks with batch B normalise exactly as one process
/// with batch N * B would. Forward: two all-reduces of per-channel doubles, the sums with the
/// element count (then the global mean), and the sums of squared deviations from that mean (the
/// global biased variance; the same two passes as <see cref="BatchNorm.Stats"/>, which avoid
/// cancellation); the running statistics are updated with the global mean and the unbiased global
/// variance on every rank alike. Backward: one all-reduce of sum dy and sum dy * (x - mean), from
/// which each rank's dx follows with the global count; dweight and dbias stay the rank's own sums,
/// which the gradient all-reduce averages like every other gradient. Since each rank's loss is the
/// mean over its own batch, the averaged gradients equal those of the combined batch's mean loss.
/// Every rank must run the same synchronised layers in the same order (they are collectives).
/// </summary>
public sealed class BatchNormSync(ICommunicator comm, string layer) : IBatchNormSync
{
    public ICommunicator Comm { get; } = comm;
    /// <summary>The layer's name in the model (for messages).</summary>
    public string Layer { get; } = layer;

    /// <summary>Synchronises every BatchNorm2d under <paramref name="root"/> (none when there is one
    /// rank); returns how many.</summary>
    public static int Attach(Module root, ICommunicator comm)
    {
        int count = 0;
        void Walk(Module m, string path)
        {
            if (m is BatchNorm2d bn) { bn.Sync = comm.Size > 1 ? new BatchNormSync(comm, path) : null; count++; }
            foreach (var (name, child) in m.Children()) Walk(child, path.Length == 0 ? name : path + "." + name);
        }
        Walk(root, "");
        return comm.Size > 1 ? count : 0;
    }

    public Tensor Forward(BatchNorm2d bn, Tensor x)
    {
        if (x.DType != DType.F32 || x.Shape.Length != 4)
            throw new ArgumentException($"sync batch_norm: x must be float32 (N, C, H, W), got {x.Describe()}");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        if (c != bn.Channels)
            throw new ArgumentException($"sync batch_norm: x {x.Describe()} has {c} channels, the layer {bn.Channels}");
        var d = x.Device;
        string name = Layer;

        // global mean: channel sums and the element count, summed over ranks
        using var sum = Tensor.Empty(d, c);
        Reductions.SumPerChannel(d, sum.Data, x.Data, n, c, hw);
        var s = new double[c + 1];
        var local = sum.ToArray();
        for (int i = 0; i < c; i++) s[i] = local[i];
        s[c] = (double)n * hw;
        Comm.AllReduce(s, ReduceOp.Sum, $"sync batch norm forward ({name}, {c} channels): sums");
        long m = (long)s[c];
        if (m < 2) throw new ArgumentException($"sync batch_norm: expected more than 1 value per channel over all ranks, got {m}");
        var meanH = new float[c];
        for (int i = 0; i < c; i++) meanH[i] = (float)(s[i] / m);
        var mean = Tensor.FromArray(d, meanH, c);

        // global variance: squared deviations from the global mean, summed over ranks
        using var ssT = Tensor.Empty(d, c);
        SyncBatchNorm.SquaredDeviation(d, ssT.Data, x.Data, mean.Data, n, c, hw);
        var ss = Array.ConvertAll(ssT.ToArray(), v => (double)v);
        Comm.AllReduce(ss, ReduceOp.Sum, $"sync batch norm forward ({name}, {c} channels): squared deviations");
        var invH = new float[c];
        for (int i = 0; i < c; i++) invH[i] = (float)(1.0 / Math.Sqrt(ss[i] / m + bn.Eps));
        var invstd = Tensor.FromArray(d, invH, c);

        // running statistics, the same on every rank (as BatchNorm.Stats: unbiased variance)
        var rm = bn.RunningMean.ToArray();
        var rv = bn.RunningVar.ToArray();
        double mom = bn.Momentum;
        for (int i = 0; i < c; i++)
        {
            rm[i] = (float)((1 - mom) * rm[i] + mom * (s[i] / m));
            rv[i] = (float)((1 - mom) * rv[i] + mom * (ss[i] / (m - 1)));
        }
        bn.RunningMean.Data.CopyFrom(rm);
        bn.RunningVar.Data.CopyFrom(rv);

        var y = Tensor.Empty(d, x.Shape);
        BatchNorm.Normalize(d, y.Data, x.Data, mean.Data, invstd.Data, bn.Weight.Data, bn.Bias.Data, n, c, hw);
        var weight = bn.Weight;
        Autograd.Record(y, "sync_batch_norm", [x, bn.Weight, bn.Bias], g =>
        {
            using var sdy = Tensor.Empty(d, c);
            using var sdyxmu = Tensor.Empty(d, c);
            SyncBatchNorm.BackwardSums(d, sdy.Data, sdyxmu.Data, g.Data, x.Data, mean.Data, n, c, hw);
            var ldy = sdy.ToArray();
            var ldx = sdyxmu.ToArray();
            var both = new double[2 * c];
            for (int i = 0; i < c; i++) { both[i] = ldy[i]; both[c + i] = ldx[i]; }
            Comm.AllReduce(both, ReduceOp.Sum, $"sync batch norm backward ({name}, {c} channels)");
            using var gdy = Tensor.FromArray(d, Array.ConvertAll(both[..c], v => (float)v), c);
            using var gdx = Tensor.FromArray(d, Array.ConvertAll(both[c..], v => (float)v), c);
            var gx = Tensor.Empty(d, x.Shape);
            SyncBatchNorm.BackwardDx(d, gx.Data, g.Data, x.Data, mean.Data, invstd.Data, weight.Data, gdy.Data, gdx.Data, m, n, c, hw);
            // this rank's dweight = sum dy * (x - mean) * invstd and dbias = sum dy
            var dw = new float[c];
            for (int i = 0; i < c; i++) dw[i] = (float)(ldx[i] * (double)invH[i]);
            var gw = Tensor.FromArray(d, dw, c);
            var gb = Tensor.FromArray(d, ldy, c);
            mean.Dispose(); invstd.Dispose();
            Autograd.Accumulate(x, gx);
            Autograd.Accumulate(weight, gw);
            Autograd.Accumulate(bn.Bias, gb);
        });
        if (y.IsLeaf) { mean.Dispose(); invstd.Dispose(); }
        return y;
    }
}
