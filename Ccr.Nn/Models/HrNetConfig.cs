namespace Ccr.Nn.Models;

/// <summary>One HRNet stage: <see cref="NumModules"/> HighResolutionModules of
/// <see cref="NumBlocks"/>[b] residual blocks of width <see cref="NumChannels"/>[b] per branch b.</summary>
public sealed record HrStageConfig(int NumModules, bool Bottleneck, int[] NumBlocks, int[] NumChannels)
{
    public int Branches => NumBlocks.Length;
}

/// <summary>
/// The HRNet builder's configuration (timm's cfg_cls entries). Stage 1 is timm's layer1 (one branch,
/// one "module"); stages 2-4 add one branch each. <see cref="StemOut"/> is timm's hard-coded 64
/// (conv2's width), kept configurable for the small CPU backbone.
/// </summary>
public sealed record HrNetConfig(string Name, int StemWidth, int StemOut,
                                 HrStageConfig Stage1, HrStageConfig Stage2, HrStageConfig Stage3, HrStageConfig Stage4)
{
    public HrStageConfig[] Stages => [Stage1, Stage2, Stage3, Stage4];

    /// <summary>Output channels of the four feature levels (strides 4, 8, 16, 32).</summary>
    public int[] FeatureChannels => Stage4.NumChannels.Select(c => c * (Stage4.Bottleneck ? 4 : 1)).ToArray();

    public static readonly int[] FeatureStrides = [4, 8, 16, 32];

    /// <summary>timm's hrnet_w18_small_v2 (3,860,720 parameters without the classification head).</summary>
    public static HrNetConfig W18SmallV2 { get; } = new("hrnet_w18_small_v2", 64, 64,
        new HrStageConfig(1, true, [2], [64]),
        new HrStageConfig(1, false, [2, 2], [18, 36]),
        new HrStageConfig(3, false, [2, 2, 2], [18, 36, 72]),
        new HrStageConfig(2, false, [2, 2, 2, 2], [18, 36, 72, 144]));

    /// <summary>
    /// The CPU demo's backbone: the same structure, about 8x narrower in the stem and 2.25x in the
    /// branches, one block per branch and one module per stage. At 64x64 its forward pass is about
    /// 6 MMAC per image (see <c>Ccr.Train model --name hrnet_tiny --size 64x64</c>), so a training step
    /// (forward + backward, ~3x) with a decoder costs a few tens of MFLOP per image.
    /// </summary>
    public static HrNetConfig Tiny { get; } = new("hrnet_tiny", 16, 16,
        new HrStageConfig(1, true, [1], [8]),
        new HrStageConfig(1, false, [1, 1], [8, 16]),
        new HrStageConfig(1, false, [1, 1, 1], [8, 16, 32]),
        new HrStageConfig(1, false, [1, 1, 1, 1], [8, 16, 32, 64]));

    public static IReadOnlyList<HrNetConfig> All => [W18SmallV2, Tiny];

    public static HrNetConfig ByName(string name) =>
        All.FirstOrDefault(c => c.Name == name)
        ?? throw new ArgumentException($"unknown backbone '{name}' (known: {string.Join(", ", All.Select(c => c.Name))})");
}
