namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.nn.functional.interpolate(mode='bilinear', align_corners=False) on (N, C, H, W).</summary>
    public static Tensor ResizeBilinear(Tensor x, int outH, int outW)
        => throw new NotImplementedException("resize: being written (foundation issue)");

    /// <summary>torch.nn.functional.interpolate(mode='nearest') on (N, C, H, W): source index
    /// floor(dst * in / out). Differentiable (HRNet's fusion upsampling).</summary>
    public static Tensor ResizeNearest(Tensor x, int outH, int outW)
        => throw new NotImplementedException("resize: being written (foundation issue)");

    /// <summary>Nearest resize of an int32 label map (N, H, W) or (N, C, H, W); no gradient.</summary>
    public static Tensor ResizeNearestLabels(Tensor labels, int outH, int outW)
        => throw new NotImplementedException("resize: being written (foundation issue)");
}
