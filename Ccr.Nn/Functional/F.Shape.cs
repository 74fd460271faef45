namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.cat along dim 1 (channels) of (N, C_i, H, W) tensors.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> xs)
        => throw new NotImplementedException("concat: being written (foundation issue)");

    /// <summary>x[:, start:start+length] of (N, C, H, W): a copy with a gradient path.</summary>
    public static Tensor SliceChannels(Tensor x, int start, int length)
        => throw new NotImplementedException("slice: being written (foundation issue)");

    /// <summary>Per-pixel L2 normalisation over channels of (N, C, H, W):
    /// x / max(||x||_2, eps), as torch.nn.functional.normalize(x, dim=1).</summary>
    public static Tensor L2Normalize(Tensor x, float eps = 1e-12f)
        => throw new NotImplementedException("l2 normalize: being written (foundation issue)");

    /// <summary>Sum of all elements: a one-element tensor.</summary>
    public static Tensor Sum(Tensor x)
        => throw new NotImplementedException("sum: being written (foundation issue)");

    /// <summary>Mean of all elements: a one-element tensor.</summary>
    public static Tensor Mean(Tensor x)
        => throw new NotImplementedException("mean: being written (foundation issue)");
}
