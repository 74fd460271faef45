using Ccr.Kernels.Contrastive;
using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Contrastive;

/// <summary>Which (target, source) pairs share a projector (the paper's Table 4).</summary>
public enum ProjectorSharing
{
    /// <summary>One projector per (target, source) pair.</summary>
    Unshared,
    /// <summary>One per target task, shared across its source tasks: the paper's default and best.</summary>
    SourceShared,
    /// <summary>One per source task, shared across target tasks (all targets need equal channels).</summary>
    TargetShared,
    /// <summary>A single projector for every pair.</summary>
    BothShared,
    /// <summary>No projector: the regulariser acts on the L2-normalised task features themselves
    /// (the paper's CCR-Basic row of Table 1).</summary>
    None,
}

/// <summary>Which pairs are regularised each step.</summary>
public enum PairSelection
{
    /// <summary>Contrastive task-pair selection: per target, one source drawn uniformly from the others.</summary>
    RandomSource,
    /// <summary>Every ordered pair (t, s), s != t: equation (3) of the paper in full.</summary>
    AllPairs,
}

/// <summary>Hyper-parameters of cross-task contrastive regularisation; defaults are the paper's.</summary>
public sealed class CcrConfig
{
    /// <summary>Triplet margin m.</summary>
    public float Margin { get; set; } = 0.2f;
    /// <summary>Anchors per image as a fraction of the projection map's pixels (see <see cref="AnchorsPerImage"/>).</summary>
    public float Gamma { get; set; } = 0.01f;
    /// <summary>A floor on anchors per image (0: none, the paper's rule). The paper's gamma gives
    /// 192 anchors on its 120x160 maps but one on a 12x16 map; the floor keeps small images
    /// sampling a comparable number (see <see cref="AnchorsPerImage"/>).</summary>
    public int MinAnchors { get; set; }
    /// <summary>k of the k nearest (positives) and k farthest (negatives) labels of continuous tasks.</summary>
    public int TopK { get; set; } = 128;
    /// <summary>C_neg: negatives per anchor.</summary>
    public int NumNegatives { get; set; } = 16;
    public CcrSampling Sampling { get; set; } = CcrSampling.Hard;
    public ProjectorSharing Sharing { get; set; } = ProjectorSharing.SourceShared;
    public PairSelection Pairs { get; set; } = PairSelection.RandomSource;
    /// <summary>lambda^ctr once ramped up.</summary>
    public float Lambda { get; set; } = 1f;
    /// <summary>Epochs over which lambda rises linearly from 0 (the paper: "the first several epochs"); 0: no ramp.</summary>
    public double RampEpochs { get; set; } = 5;
    /// <summary>Projector output dimension D.</summary>
    public int ProjectionDim { get; set; } = 128;
    /// <summary>Width of the projector's hidden 1x1 conv; 0 means the input's channel count.</summary>
    public int HiddenDim { get; set; }
    /// <summary>Copy every positive / negative feature distance to the host after each step (for the
    /// paper's Figures 1 and 5); costs a device synchronisation, so off by default.</summary>
    public bool CollectSamples { get; set; }

    /// <summary>lambda at a (fractional) epoch: lambda * min(1, epoch / RampEpochs).</summary>
    public float LambdaAt(double epoch) =>
        RampEpochs <= 0 ? Lambda : (float)(Lambda * Math.Clamp(epoch / RampEpochs, 0, 1));

    /// <summary>
    /// Anchors per image for a projection map of h x w: C_A = max(1, floor(gamma h w), min(MinAnchors, h w)).
    /// The one place this rule lives (host and device samplers both call it). Images with fewer
    /// valid pixels than C_A use every valid pixel once; the rest of their anchor slots stay empty.
    /// </summary>
    public int AnchorsPerImage(int h, int w)
    {
        int byGamma = (int)Math.Floor(Gamma * (double)h * w + 1e-4); // 0.01f * 19200 is 191.99999... in double
        return Math.Max(1, Math.Max(byGamma, Math.Min(MinAnchors, h * w)));
    }

    public void Validate()
    {
        if (!(Margin >= 0)) throw new ArgumentException($"ccr.margin must be >= 0, got {Margin}");
        if (!(Gamma > 0 && Gamma <= 1)) throw new ArgumentException($"ccr.gamma must be in (0, 1], got {Gamma}");
        if (MinAnchors < 0) throw new ArgumentException($"ccr.min_anchors must be >= 0, got {MinAnchors}");
        if (TopK < 1) throw new ArgumentException($"ccr.top_k must be >= 1, got {TopK}");
        if (NumNegatives < 1 || NumNegatives > CcrSelect.MaxNegatives)
            throw new ArgumentException($"ccr.num_negatives must be in [1, {CcrSelect.MaxNegatives}], got {NumNegatives}");
        if (ProjectionDim < 1) throw new ArgumentException($"ccr.projection_dim must be >= 1, got {ProjectionDim}");
        if (HiddenDim < 0) throw new ArgumentException($"ccr.hidden_dim must be >= 0, got {HiddenDim}");
        if (!(Lambda >= 0)) throw new ArgumentException($"ccr.lambda must be >= 0, got {Lambda}");
        if (!(RampEpochs >= 0)) throw new ArgumentException($"ccr.ramp_epochs must be >= 0, got {RampEpochs}");
    }
}
