using Ccr.Kernels.Ops;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.nn.functional.batch_norm on x (N, C, H, W) with weight, bias, running mean and
    /// variance (C). Training: batch statistics (biased variance for normalising), running stats
    /// updated in place with momentum and the unbiased variance. Eval: running statistics.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                     bool training, float momentum = 0.1f, float eps = 1e-5f) =>
        BatchNormAct("batch_norm", x, weight, bias, runningMean, runningVar, null, relu: false, training, momentum, eps);

    /// <summary>relu(batch_norm(x) + residual) in one fused op (residual null: relu(batch_norm(x))):
    /// the forward is one pass after the statistics, the backward one reduction pass and one pass
    /// for dx, instead of three ops each reading and writing the whole tensor. Same result as
    /// <c>Relu(Add(BatchNorm2d(x, ...), residual))</c>.   x, residual (N, C, H, W)</summary>
    public static Tensor BatchNormRelu(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                       bool training, Tensor? residual = null, float momentum = 0.1f, float eps = 1e-5f) =>
        BatchNormAct(residual == null ? "batch_norm_relu" : "batch_norm_add_relu", x, weight, bias, runningMean, runningVar,
                     residual, relu: true, training, momentum, eps);

    static Tensor BatchNormAct(string op, Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                               Tensor? residual, bool relu, bool training, float momentum, float eps)
    {
        Float(op, x);
        Rank(op, x, 4, "(N, C, H, W)");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
        {
            Float(op, t);
            if (t.Numel != c)
                throw new ArgumentException($"{op}: {name} {t.Describe()} has {t.Numel} elements, x {x.Describe()} has {c} channels");
        }
        if (residual != null)
        {
            Float(op, residual);
            SameShape(op, x, residual);
        }
        var d = x.Device;
        // Saved for backward (as PyTorch's save_mean / save_invstd); freed by the backward closure.
        var mean = Tensor.Empty(d, c);
        var invstd = Tensor.Empty(d, c);
        var y = Tensor.Empty(d, x.Shape);
        BatchNorm.Forward(d, y.Data, mean.Data, invstd.Data, runningMean.Data, runningVar.Data, x.Data, residual?.Data,
                          weight.Data, bias.Data, n, c, hw, training, momentum, eps, relu);
        Tensor[] inputs = residual == null ? [x, weight, bias] : [x, weight, bias, residual];
        Autograd.Record(y, op, inputs, g =>
        {
            var gx = Tensor.Empty(d, x.Shape);
            var gw = Tensor.Empty(d, c);
            var gb = Tensor.Empty(d, c);
            var gr = residual is { RequiresGrad: true } ? Tensor.Empty(d, x.Shape) : null;
            // y is read only for the ReLU's mask (without one, x stands in and is not read as y)
            BatchNorm.Backward(d, gx.Data, gr?.Data, gw.Data, gb.Data, g.Data, relu ? y.Data : x.Data, x.Data, mean.Data, invstd.Data,
                               weight.Data, n, c, hw, training, relu);
            mean.Dispose(); invstd.Dispose();
            Autograd.Accumulate(x, gx);
            Autograd.Accumulate(weight, gw);
            Autograd.Accumulate(bias, gb);
            if (gr != null) Autograd.Accumulate(residual!, gr);
        });
        if (y.IsLeaf) { mean.Dispose(); invstd.Dispose(); }
        return y;
    }
}
