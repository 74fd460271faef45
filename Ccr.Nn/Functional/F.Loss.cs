namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>Softmax cross-entropy of logits (N, C, H, W) against int32 labels (N, H, W), mean
    /// over pixels whose label is not <paramref name="ignoreIndex"/>. With class weights, PyTorch's
    /// weighted mean: sum(w_y * loss) / sum(w_y). Returns a one-element tensor.</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, int ignoreIndex = 255, float[]? classWeights = null)
        => throw new NotImplementedException("cross entropy: being written (foundation issue)");

    /// <summary>L1 over valid pixels of pred and target (N, C, H, W): a pixel is valid when no
    /// channel equals <paramref name="ignoreValue"/> and not every channel is 0 (depth 0 and zero
    /// normals are invalid). Sum over channels and valid pixels, divided by the valid pixel count.</summary>
    public static Tensor MaskedL1(Tensor pred, Tensor target, float ignoreValue = 255f)
        => throw new NotImplementedException("masked L1: being written (foundation issue)");

    /// <summary>Balanced binary cross-entropy with logits (N, 1, H, W) against float targets 0/1
    /// (255 = ignore): w * loss over positives + (1 - w) * loss over negatives, as the public
    /// multi-task code's edge loss (pos_weight 0.95 PASCAL, 0.8 NYUD).</summary>
    public static Tensor BalancedBce(Tensor logits, Tensor target, float posWeight, float ignoreValue = 255f)
        => throw new NotImplementedException("balanced BCE: being written (foundation issue)");
}
