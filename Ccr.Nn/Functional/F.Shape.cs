using Ccr.Kernels.Ops;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.cat along dim 1 (channels) of (N, C_i, H, W) tensors.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> xs)
    {
        if (xs.Count == 0) throw new ArgumentException("concat: no tensors");
        var first = xs[0];
        int total = 0;
        foreach (var t in xs)
        {
            Float("concat", t);
            Rank("concat", t, 4, "(N, C, H, W)");
            if (t.Device != first.Device || t.Dim(0) != first.Dim(0) || t.Dim(2) != first.Dim(2) || t.Dim(3) != first.Dim(3))
                throw new ArgumentException($"concat: {t.Describe()} does not match {first.Describe()} in N, H, W or device");
            total += t.Dim(1);
        }
        var d = first.Device;
        int n = first.Dim(0), hw = first.Dim(2) * first.Dim(3);
        var y = Tensor.Empty(d, n, total, first.Dim(2), first.Dim(3));
        var inputs = xs.ToArray();
        int off = 0;
        foreach (var t in inputs) { ShapeOps.CopyChannels(d, y.Data, total, off, t.Data, t.Dim(1), 0, t.Dim(1), n, hw); off += t.Dim(1); }
        return Autograd.Record(y, "concat", inputs, g =>
        {
            int o = 0;
            foreach (var t in inputs)
            {
                if (t.RequiresGrad)
                {
                    var gt = Tensor.Empty(d, t.Shape);
                    ShapeOps.CopyChannels(d, gt.Data, t.Dim(1), 0, g.Data, total, o, t.Dim(1), n, hw);
                    Autograd.Accumulate(t, gt);
                }
                o += t.Dim(1);
            }
        });
    }

    /// <summary>x[:, start:start+length] of (N, C, H, W): a copy with a gradient path.</summary>
    public static Tensor SliceChannels(Tensor x, int start, int length)
    {
        Float("slice_channels", x);
        Rank("slice_channels", x, 4, "(N, C, H, W)");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        if (start < 0 || length < 0 || start + length > c)
            throw new ArgumentException($"slice_channels: channels [{start}, {start + length}) outside {x.Describe()}");
        var d = x.Device;
        var y = Tensor.Empty(d, n, length, x.Dim(2), x.Dim(3));
        ShapeOps.CopyChannels(d, y.Data, length, 0, x.Data, c, start, length, n, hw);
        return Autograd.Record(y, "slice_channels", [x], g =>
        {
            var gx = Tensor.Zeros(d, x.Shape);
            ShapeOps.CopyChannels(d, gx.Data, c, start, g.Data, length, 0, length, n, hw);
            Autograd.Accumulate(x, gx);
        });
    }

    /// <summary>Per-pixel L2 normalisation over channels of (N, C, H, W):
    /// x / max(||x||_2, eps), as torch.nn.functional.normalize(x, dim=1).</summary>
    public static Tensor L2Normalize(Tensor x, float eps = 1e-12f)
    {
        Float("l2_normalize", x);
        Rank("l2_normalize", x, 4, "(N, C, H, W)");
        int n = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        var d = x.Device;
        var y = Tensor.Empty(d, x.Shape);
        var norm = Tensor.Empty(d, n, hw); // (N, H*W), saved for backward
        ShapeOps.L2Normalize(d, y.Data, norm.Data, x.Data, n, c, hw, eps);
        Autograd.Record(y, "l2_normalize", [x], g =>
        {
            var gx = Tensor.Empty(d, x.Shape);
            ShapeOps.L2NormalizeBackward(d, gx.Data, g.Data, y.Data, norm.Data, n, c, hw, eps);
            norm.Dispose();
            Autograd.Accumulate(x, gx);
        });
        if (y.IsLeaf) norm.Dispose();
        return y;
    }

    /// <summary>Sum of all elements: a one-element tensor.</summary>
    public static Tensor Sum(Tensor x) => Reduce("sum", x, 1f);

    /// <summary>Mean of all elements: a one-element tensor.</summary>
    public static Tensor Mean(Tensor x)
    {
        if (x.Numel == 0) throw new ArgumentException($"mean of empty tensor {x.Describe()}");
        return Reduce("mean", x, 1f / x.Numel);
    }

    static Tensor Reduce(string op, Tensor x, float scale)
    {
        Float(op, x);
        var d = x.Device;
        var y = Tensor.Empty(d);
        Reductions.Sum(d, y.Data, x.Data, scale);
        return Autograd.Record(y, op, [x], g =>
        {
            var gx = Tensor.Empty(d, x.Shape);
            Reductions.Broadcast(d, gx.Data, g.Data, scale);
            Autograd.Accumulate(x, gx);
        });
    }
}
