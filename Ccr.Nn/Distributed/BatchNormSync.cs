using Ccr.Kernels.Ops;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Distributed;

/// <summary>What a <see cref="BatchNorm2d"/> in training mode calls instead of its own batch
/// statistics when <see cref="BatchNorm2d.Sync"/> is set: act(bn(x) + residual), act = ReLU when
/// <paramref name="relu"/> (residual null: no add).</summary>
public interface IBatchNormSync
{
    Tensor Forward(BatchNorm2d bn, Tensor x, Tensor? residual = null, bool relu = false);
}

/// <summary>
/// Synchronised batch norm (torch.nn.SyncBatchNorm): the statistics of a training step are those
/// of the whole batch over every rank, so N ranks with batch B normalise exactly as one process
/// with batch N * B would. Forward: two all-reduces of per-channel doubles, the sums with the
/// element count (then the global mean), and the sums of squared deviations from that mean (the
/// global biased variance; two passes avoid cancellation); the running statistics are updated with
/// the global mean and the unbiased global variance on every rank alike, and the fused batch-norm
/// kernel normalises with them (with the ReLU and residual add of BatchNorm2d.ForwardRelu when
/// asked). Backward: one all-reduce of sum dz and sum dz * xhat (dz: dy through the ReLU), from
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

    public Tensor Forward(BatchNorm2d bn, Tensor x, Tensor? residual = null, bool relu = false)
    {
        if (x.DType != DType.F32 || x.Shape.Length != 4)
            throw new ArgumentException($"sync batch_norm: x must be float32 (N, C, H, W), got {x.Describe()}");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        if (c != bn.Channels)
            throw new ArgumentException($"sync batch_norm: x {x.Describe()} has {c} channels, the layer {bn.Channels}");
        if (residual != null && (residual.DType != DType.F32 || !residual.Shape.SequenceEqual(x.Shape)))
            throw new ArgumentException($"sync batch_norm: residual {residual.Describe()} does not match x {x.Describe()}");
        var d = x.Device;
        string name = Layer;

        // global mean: channel sums and the element count, summed over ranks
        double[] s;
        using (var sum = Tensor.Empty(d, c))
        {
            Reductions.SumPerChannel(d, sum.Data, x.Data, n, c, hw);
            s = [.. sum.ToArray().Select(v => (double)v), (double)n * hw];
        }
        Comm.AllReduce(s, ReduceOp.Sum, $"sync batch norm forward ({name}, {c} channels): sums");
        long m = (long)s[c];
        if (m < 2) throw new ArgumentException($"sync batch_norm: expected more than 1 value per channel over all ranks, got {m}");
        var meanH = new float[c];
        for (int i = 0; i < c; i++) meanH[i] = (float)(s[i] / m);

        // global variance: squared deviations from the global mean, summed over ranks
        double[] ss;
        using (var meanT = Tensor.FromArray(d, meanH, c))
        using (var ssT = Tensor.Empty(d, c))
        {
            SyncBatchNorm.SquaredDeviation(d, ssT.Data, x.Data, meanT.Data, n, c, hw);
            ss = Array.ConvertAll(ssT.ToArray(), v => (double)v);
        }
        Comm.AllReduce(ss, ReduceOp.Sum, $"sync batch norm forward ({name}, {c} channels): squared deviations");

        // running statistics, the same on every rank (as BatchNorm.Forward: unbiased variance)
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

        // normalise (and add, and clamp) with the global statistics, given to the fused kernel as
        // fixed ("eval") statistics; mean and invstd come back for the backward pass
        var mean = Tensor.Empty(d, c);
        var invstd = Tensor.Empty(d, c);
        var y = Tensor.Empty(d, x.Shape);
        using (var gm = Tensor.FromArray(d, meanH, c))
        using (var gv = Tensor.FromArray(d, Array.ConvertAll(ss, v => (float)(v / m)), c))
            BatchNorm.Forward(d, y.Data, mean.Data, invstd.Data, gm.Data, gv.Data, x.Data, residual?.Data, bn.Weight.Data, bn.Bias.Data,
                              n, c, hw, training: false, bn.Momentum, bn.Eps, relu);
        var weight = bn.Weight;
        var bias = bn.Bias;
        Tensor[] inputs = residual == null ? [x, weight, bias] : [x, weight, bias, residual];
        Autograd.Record(y, relu ? "sync_batch_norm_relu" : "sync_batch_norm", inputs, g =>
        {
            // fixed statistics: dz (dy through the ReLU), this rank's sum dz (dbias) and sum dz * xhat (dweight)
            var gx = Tensor.Empty(d, x.Shape);
            var gz = Tensor.Empty(d, x.Shape);
            var gw = Tensor.Empty(d, c);
            var gb = Tensor.Empty(d, c);
            BatchNorm.Backward(d, gx.Data, gz.Data, gw.Data, gb.Data, g.Data, relu ? y.Data : x.Data, x.Data, mean.Data, invstd.Data,
                               weight.Data, n, c, hw, training: false, relu);
            var both = new double[2 * c];
            var lb = gb.ToArray();
            var lw = gw.ToArray();
            for (int i = 0; i < c; i++) { both[i] = lb[i]; both[c + i] = lw[i]; }
            Comm.AllReduce(both, ReduceOp.Sum, $"sync batch norm backward ({name}, {c} channels)");
            using (var sdz = Tensor.FromArray(d, Array.ConvertAll(both[..c], v => (float)v), c))
            using (var sdzx = Tensor.FromArray(d, Array.ConvertAll(both[c..], v => (float)v), c))
                SyncBatchNorm.BackwardDx(d, gx.Data, gz.Data, x.Data, mean.Data, invstd.Data, weight.Data, sdz.Data, sdzx.Data, m, n, c, hw);
            mean.Dispose(); invstd.Dispose();
            // dweight and dbias stay this rank's: the gradient all-reduce averages them
            Autograd.Accumulate(x, gx);
            Autograd.Accumulate(weight, gw);
            Autograd.Accumulate(bias, gb);
            if (residual != null) Autograd.Accumulate(residual, gz);
            else gz.Dispose();
        });
        if (y.IsLeaf) { mean.Dispose(); invstd.Dispose(); }
        return y;
    }
}
