using Ccr.Kernels.Ops;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.nn.functional.interpolate(mode='bilinear', align_corners=False) on (N, C, H, W).</summary>
    public static Tensor ResizeBilinear(Tensor x, int outH, int outW) => ResizeFloat("resize_bilinear", x, outH, outW, bilinear: true);

    /// <summary>torch.nn.functional.interpolate(mode='nearest') on (N, C, H, W): source index
    /// floor(dst * in / out). Differentiable (HRNet's fusion upsampling).</summary>
    public static Tensor ResizeNearest(Tensor x, int outH, int outW) => ResizeFloat("resize_nearest", x, outH, outW, bilinear: false);

    /// <summary>Nearest resize of an int32 label map (N, H, W) or (N, C, H, W); no gradient.</summary>
    public static Tensor ResizeNearestLabels(Tensor labels, int outH, int outW)
    {
        if (labels.DType != DType.I32) throw new ArgumentException($"resize_nearest_labels: {labels.Describe()} must be int32");
        if (labels.Rank is not (3 or 4))
            throw new ArgumentException($"resize_nearest_labels: expected (N, H, W) or (N, C, H, W), got {Tensor.ShapeString(labels.Shape)}");
        int inH = labels.Dim(-2), inW = labels.Dim(-1);
        int planes = labels.Rank == 3 ? labels.Dim(0) : labels.Dim(0) * labels.Dim(1);
        var shape = (int[])labels.Shape.Clone();
        shape[^2] = outH; shape[^1] = outW;
        var y = Tensor.Empty(labels.Device, DType.I32, shape);
        y.Name = "resize_nearest_labels";
        Resize.NearestLabels(labels.Device, y.IntData, labels.IntData, planes, inH, inW, outH, outW);
        return y;
    }

    static Tensor ResizeFloat(string op, Tensor x, int outH, int outW, bool bilinear)
    {
        Float(op, x);
        Rank(op, x, 4, "(N, C, H, W)");
        if (outH <= 0 || outW <= 0) throw new ArgumentException($"{op}: output size {outH}x{outW} of {x.Describe()} must be positive");
        var d = x.Device;
        int planes = x.Dim(0) * x.Dim(1), inH = x.Dim(2), inW = x.Dim(3);
        var y = Tensor.Empty(d, x.Dim(0), x.Dim(1), outH, outW);
        if (bilinear) Resize.Bilinear(d, y.Data, x.Data, planes, inH, inW, outH, outW);
        else Resize.Nearest(d, y.Data, x.Data, planes, inH, inW, outH, outW);
        return Autograd.Record(y, op, [x], g =>
        {
            var gx = Tensor.Empty(d, x.Shape);
            if (bilinear) Resize.BilinearBackward(d, gx.Data, g.Data, planes, inH, inW, outH, outW);
            else Resize.NearestBackward(d, gx.Data, g.Data, planes, inH, inW, outH, outW);
            Autograd.Accumulate(x, gx);
        });
    }
}
