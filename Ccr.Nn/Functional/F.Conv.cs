namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>2-D convolution as torch.nn.functional.conv2d: x (N, Cin, H, W), w (Cout, Cin, k, k),
    /// b (Cout) or null; output (N, Cout, OH, OW), OH = (H + 2p - d(k-1) - 1) / s + 1.</summary>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? b, int stride = 1, int padding = 0, int dilation = 1)
        => throw new NotImplementedException("conv2d: being written (foundation issue)");
}
