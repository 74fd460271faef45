using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>2-D convolution as torch.nn.functional.conv2d: x (N, Cin, H, W), w (Cout, Cin, k, k),
    /// b (Cout) or null; output (N, Cout, OH, OW), OH = (H + 2p - d(k-1) - 1) / s + 1. <paramref name="precision"/>:
    /// the arithmetic of the forward and both gradient GEMMs on the CUDA variant (TF32 as PyTorch's
    /// allow_tf32); the CPU variant computes in fp32.</summary>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? b, int stride = 1, int padding = 0, int dilation = 1,
                                MathPrecision precision = MathPrecision.Fp32)
    {
        Float("conv2d", x); Float("conv2d", w);
        if (b != null) { Float("conv2d", b); Rank("conv2d bias", b, 1, "(Cout)"); }
        if (x.Device != w.Device || (b != null && b.Device != x.Device))
            throw new ArgumentException("conv2d: tensors on different devices");
        var g = ConvGeom.From(x.Shape, w.Shape, b != null ? (int)b.Numel : null, stride, padding, dilation);
        var d = x.Device;
        var y = Tensor.Empty(d, g.OutShape);
        Kernels.Ops.Convolution.Forward(d, y.Data, x.Data, w.Data, b?.Data, g, precision: precision);
        Tensor[] inputs = b != null ? [x, w, b] : [x, w];
        return Autograd.Record(y, "conv2d", inputs, dy =>
        {
            if (x.RequiresGrad) { var dx = Tensor.Empty(d, x.Shape); Kernels.Ops.Convolution.BackwardInput(d, dx.Data, dy.Data, w.Data, g, precision: precision); Autograd.Accumulate(x, dx); }
            if (w.RequiresGrad) { var dw = Tensor.Empty(d, w.Shape); Kernels.Ops.Convolution.BackwardWeight(d, dw.Data, dy.Data, x.Data, g, precision: precision); Autograd.Accumulate(w, dw); }
            if (b is { RequiresGrad: true }) { var db = Tensor.Empty(d, b.Shape); Kernels.Ops.Convolution.BackwardBias(d, db.Data, dy.Data, g); Autograd.Accumulate(b, db); }
        });
    }

    /// <summary>Matrix product a (M, K) @ b (K, N) = (M, N), as torch.matmul on 2-D tensors, its three GEMMs
    /// at <paramref name="precision"/> on the CUDA variant (as <see cref="Conv2d"/>).</summary>
    public static Tensor MatMul(Tensor a, Tensor b, MathPrecision precision = MathPrecision.Fp32)
    {
        Float("matmul", a); Float("matmul", b);
        Rank("matmul", a, 2, "(M, K)"); Rank("matmul", b, 2, "(K, N)");
        if (a.Shape[1] != b.Shape[0])
            throw new ArgumentException($"matmul: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}: inner sizes differ");
        if (a.Device != b.Device) throw new ArgumentException("matmul: tensors on different devices");
        int m = a.Shape[0], k = a.Shape[1], n = b.Shape[1];
        var d = a.Device;
        var y = Tensor.Empty(d, m, n);
        Gemm.Run(d, y.Data, a.Data, b.Data, m, n, k, precision: precision);
        return Autograd.Record(y, "matmul", [a, b], dy =>
        {
            // da (M, K) = dy (M, N) b^T; db (K, N) = a^T dy
            if (a.RequiresGrad) { var da = Tensor.Empty(d, m, k); Gemm.Run(d, da.Data, dy.Data, b.Data, m, k, n, transB: true, precision: precision); Autograd.Accumulate(a, da); }
            if (b.RequiresGrad) { var db = Tensor.Empty(d, k, n); Gemm.Run(d, db.Data, a.Data, dy.Data, k, n, m, transA: true, precision: precision); Autograd.Accumulate(b, db); }
        });
    }
}
