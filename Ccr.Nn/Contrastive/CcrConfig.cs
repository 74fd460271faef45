using Ccr.Kernels.Contrastive;
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

/// <summary>
/// Hyper-parameters of cross-task contrastive regularisation; defaults are the paper's. The one CCR
/// settings type: a run's config deserialises its <c>ccr:</c> section straight into it (Ccr.Training's
/// ConfigSchema maps the YAML keys, e.g. <c>negatives</c> to <see cref="NumNegatives"/>), and
/// <see cref="CcrLoss"/> takes it as it is. Immutable: a variant is a <c>with</c> copy.
/// </summary>
public sealed record CcrConfig
{
    /// <summary>Whether a multi-task run builds the regulariser at all (the YAML's ccr.enabled);
    /// <see cref="CcrLoss"/> itself does not read it.</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>Triplet margin m.</summary>
    public float Margin { get; init; } = 0.2f;
    /// <summary>Anchors per image as a fraction of the projection map's pixels (see <see cref="AnchorsPerImage"/>).</summary>
    public float Gamma { get; init; } = 0.01f;
    /// <summary>A floor on anchors per image (0: none, the paper's rule). The paper's gamma gives
    /// 192 anchors on its 120x160 maps but one on a 12x16 map; the floor keeps small images
    /// sampling a comparable number (see <see cref="AnchorsPerImage"/>).</summary>
    public int MinAnchors { get; init; }
    /// <summary>k of the k nearest (positives) and k farthest (negatives) labels of continuous tasks.</summary>
    public int TopK { get; init; } = 128;
    /// <summary>C_neg: negatives per anchor.</summary>
    public int NumNegatives { get; init; } = 16;
    public CcrSampling Sampling { get; init; } = CcrSampling.Hard;
    public ProjectorSharing Sharing { get; init; } = ProjectorSharing.SourceShared;
    public PairSelection Pairs { get; init; } = PairSelection.RandomSource;
    /// <summary>lambda^ctr once ramped up.</summary>
    public float Lambda { get; init; } = 1f;
    /// <summary>Epochs over which lambda rises linearly from 0 (the paper: "the first several epochs"); 0: no ramp.
    /// 1 is what every run config has used (the YAML default and every preset), so a config that
    /// omits the key and code that builds the record directly agree. A float, as the YAML has
    /// always been read: a ramp like 0.3 keeps the float's value.</summary>
    public float RampEpochs { get; init; } = 1f;
    /// <summary>Projector output dimension D.</summary>
    public int ProjectionDim { get; init; } = 128;
    /// <summary>Width of the projector's hidden 1x1 conv; 0 means the input's channel count. Not a
    /// config key (runs use the input's width).</summary>
    public int HiddenDim { get; init; }
    /// <summary>Copy every positive / negative feature distance to the host after each step (for the
    /// paper's Figures 1 and 5); costs a device synchronisation, so off by default. Not a config key
    /// (the distance probe sets it on its own copy).</summary>
    public bool CollectSamples { get; init; }

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
            throw new ArgumentException($"ccr.negatives must be in [1, {CcrSelect.MaxNegatives}], got {NumNegatives}");
        if (ProjectionDim < 1) throw new ArgumentException($"ccr.proj_dim must be >= 1, got {ProjectionDim}");
        if (HiddenDim < 0) throw new ArgumentException($"ccr.hidden_dim must be >= 0, got {HiddenDim}");
        if (!(Lambda >= 0)) throw new ArgumentException($"ccr.lambda must be >= 0, got {Lambda}");
        if (!(RampEpochs >= 0)) throw new ArgumentException($"ccr.ramp_epochs must be >= 0, got {RampEpochs}");
    }
}
