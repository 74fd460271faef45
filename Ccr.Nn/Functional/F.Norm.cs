namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>torch.nn.functional.batch_norm on x (N, C, H, W) with weight, bias, running mean and
    /// variance (C). Training: batch statistics (biased variance for normalising), running stats
    /// updated in place with momentum and the unbiased variance. Eval: running statistics.</summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                     bool training, float momentum = 0.1f, float eps = 1e-5f)
        => throw new NotImplementedException("batch_norm: being written (foundation issue)");
}
