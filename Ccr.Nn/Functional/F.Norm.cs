using Ccr.Kernels;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.nn.functional.batch_norm on x (N, C, H, W) with weight, bias, running mean and
    /// variance (C). Training: batch statistics (biased variance for normalising), running stats
    /// updated in place with momentum and the unbiased variance. Eval: running statistics.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                     bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        Float("batch_norm", x);
        Rank("batch_norm", x, 4, "(N, C, H, W)");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
        {
            Float("batch_norm", t);
            if (t.Numel != c)
                throw new ArgumentException($"batch_norm: {name} {t.Describe()} has {t.Numel} elements, x {x.Describe()} has {c} channels");
        }
        var d = x.Device;
        // Saved for backward (as PyTorch's save_mean / save_invstd); freed by the backward closure.
        var mean = Tensor.Empty(d, c);
        var invstd = Tensor.Empty(d, c);
        if (training)
            BatchNorm.Stats(d, mean.Data, invstd.Data, runningMean.Data, runningVar.Data, x.Data, n, c, hw, momentum, eps);
        else
            BatchNorm.EvalStats(d, mean.Data, invstd.Data, runningMean.Data, runningVar.Data, eps);
        var y = Tensor.Empty(d, x.Shape);
        BatchNorm.Normalize(d, y.Data, x.Data, mean.Data, invstd.Data, weight.Data, bias.Data, n, c, hw);
        Autograd.Record(y, "batch_norm", [x, weight, bias], g =>
        {
            var gx = Tensor.Empty(d, x.Shape);
            var gw = Tensor.Empty(d, c);
            var gb = Tensor.Empty(d, c);
            BatchNorm.Backward(d, gx.Data, gw.Data, gb.Data, g.Data, x.Data, mean.Data, invstd.Data, weight.Data, n, c, hw, training);
            mean.Dispose(); invstd.Dispose();
            Autograd.Accumulate(x, gx);
            Autograd.Accumulate(weight, gw);
            Autograd.Accumulate(bias, gb);
        });
        if (y.IsLeaf) { mean.Dispose(); invstd.Dispose(); }
        return y;
    }
}
