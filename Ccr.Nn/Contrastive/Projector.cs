using Ccr.Kernels;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Contrastive;

/// <summary>
/// The CCR feature projector of equation (2): BN(Conv1x1(ReLU(Conv1x1(F)))), then per-pixel L2
/// normalisation over channels, so that feature distances lie in [0, 2]. Parameters are named as
/// torch.nn.Sequential would name them ("net.0.weight", ..., "net.3.running_var").
/// </summary>
public sealed class Projector : Layer
{
    public int InChannels { get; }
    public int HiddenDim { get; }
    public int OutDim { get; }
    public Sequential Net { get; }

    public Projector(Device d, Rng rng, int inChannels, int outDim = 128, int hiddenDim = 0)
    {
        if (inChannels < 1 || outDim < 1 || hiddenDim < 0)
            throw new ArgumentException($"Projector({inChannels} -> {outDim}, hidden {hiddenDim}): bad sizes");
        InChannels = inChannels; OutDim = outDim; HiddenDim = hiddenDim == 0 ? inChannels : hiddenDim;
        Net = Child("net", new Sequential(
            new Conv2d(d, rng, inChannels, HiddenDim, 1),
            new ReLU(),
            new Conv2d(d, rng, HiddenDim, outDim, 1),
            new BatchNorm2d(d, outDim)));
    }

    /// <summary>x (N, C_in, H, W) -> unit-norm projection (N, D, H, W).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Dim(1) != InChannels)
            throw new ArgumentException($"Projector: expected (N, {InChannels}, H, W), got {Tensor.ShapeString(x.Shape)}");
        return Functional.F.L2Normalize(Net.Forward(x));
    }
}
