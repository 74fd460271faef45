using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Functional;

public static partial class F
{
    /// <summary>Softmax cross-entropy of logits (N, C, H, W) against int32 labels (N, H, W), mean
    /// over pixels whose label is not <paramref name="ignoreIndex"/>. With class weights, PyTorch's
    /// weighted mean: sum(w_y * loss) / sum(w_y). Returns a one-element tensor (rank 0, as PyTorch's
    /// scalar). When every pixel is ignored the loss and its gradient are 0 (PyTorch: NaN).
    /// Labels must be in [0, C) or the ignore index (<see cref="Tensor.FromLabels"/> checks on the
    /// host); the kernel skips any other value instead of reading out of range. No gradient flows
    /// to the labels or the weights.</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, int ignoreIndex = 255, float[]? classWeights = null)
    {
        if (classWeights == null) return CrossEntropy(logits, labels, ignoreIndex, null, default);
        if (logits.Rank == 4 && classWeights.Length != logits.Dim(1))
            throw new ArgumentException($"cross_entropy: {classWeights.Length} class weights for {logits.Dim(1)} classes");
        var weights = Tensor.FromArray(logits.Device, classWeights, classWeights.Length);
        return CrossEntropy(logits, labels, ignoreIndex, weights, weights.Data);
    }

    /// <summary>Cross-entropy with class weights already in device memory (C floats, read by the
    /// kernels: per-batch weights such as saliency's, uploaded with the step's scalars).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, int ignoreIndex, Buf<float> classWeights) =>
        CrossEntropy(logits, labels, ignoreIndex, null, classWeights);

    // owned: the weights' tensor when this op made it (freed with the op's saved tensors)
    static Tensor CrossEntropy(Tensor logits, Tensor labels, int ignoreIndex, Tensor? owned, Buf<float> classWeights)
    {
        const string op = "cross_entropy";
        Rank(op, logits, 4, "(N, C, H, W)");
        Float(op, logits);
        if (labels.DType != DType.I32) throw new ArgumentException($"{op}: labels {labels.Describe()} must be int32");
        int N = logits.Dim(0), C = logits.Dim(1), H = logits.Dim(2), W = logits.Dim(3);
        if (labels.Rank != 3 || labels.Dim(0) != N || labels.Dim(1) != H || labels.Dim(2) != W)
            throw new ArgumentException($"{op}: labels {Tensor.ShapeString(labels.Shape)} do not match logits {Tensor.ShapeString(logits.Shape)} (want [N, H, W])");
        if (logits.Device != labels.Device) throw new ArgumentException($"{op}: logits and labels on different devices");
        bool hasWeights = classWeights.IsValid;
        if (hasWeights && classWeights.Length != C)
            throw new ArgumentException($"{op}: {classWeights.Length} class weights for {C} classes");
        var d = logits.Device;
        int HW = H * W;
        var placeholder = hasWeights ? null : Tensor.Zeros(d, 1); // the kernels need some view; never read
        var weights = hasWeights ? classWeights : placeholder!.Data;
        var stats = Tensor.Empty(d, 2); // [loss, sum of weights]
        Losses.CrossEntropy(d, stats.Data, logits.Data, labels.IntData, weights, hasWeights, ignoreIndex, N, C, HW);
        var y = ScalarOf(stats, op);
        var saved = owned ?? placeholder;
        return RecordLoss(y, op, [logits], g =>
        {
            var dx = Tensor.Empty(d, logits.Shape);
            Losses.CrossEntropyBackward(d, dx.Data, g.Data, stats.Data, logits.Data, labels.IntData, weights,
                                        hasWeights, ignoreIndex, N, C, HW);
            Autograd.Accumulate(logits, dx);
            stats.Dispose(); saved?.Dispose();
        }, saved == null ? [stats] : [stats, saved]);
    }

    /// <summary>L1 over valid pixels of pred and target (N, C, H, W): a pixel is valid when no
    /// channel equals <paramref name="ignoreValue"/> and not every channel is 0 (depth 0 and zero
    /// normals are invalid). Sum over channels and valid pixels, divided by the valid pixel count
    /// (0 when none). The gradient is sign(p - t) / count (0 where p == t, as PyTorch's L1); the
    /// target gets none.</summary>
    public static Tensor MaskedL1(Tensor pred, Tensor target, float ignoreValue = 255f)
    {
        const string op = "masked_l1";
        SameShape(op, pred, target);
        Float(op, pred); Float(op, target);
        if (pred.Rank < 2) throw new ArgumentException($"{op}: expected (N, C, ...) tensors, got {Tensor.ShapeString(pred.Shape)}");
        int N = pred.Dim(0), C = pred.Dim(1);
        int HW = N * C == 0 ? 0 : checked((int)(pred.Numel / ((long)N * C)));
        var d = pred.Device;
        var stats = Tensor.Empty(d, 2); // [loss, valid pixels]
        Losses.MaskedL1(d, stats.Data, pred.Data, target.Data, ignoreValue, N, C, HW);
        var y = ScalarOf(stats, op);
        return RecordLoss(y, op, [pred], g =>
        {
            var dp = Tensor.Empty(d, pred.Shape);
            Losses.MaskedL1Backward(d, dp.Data, g.Data, stats.Data, pred.Data, target.Data, ignoreValue, N, C, HW);
            Autograd.Accumulate(pred, dp);
            stats.Dispose();
        }, stats);
    }

    /// <summary>Balanced binary cross-entropy with logits (N, 1, H, W) against float targets 0/1
    /// (255 = ignore): w * loss over positives + (1 - w) * loss over negatives, as the public
    /// multi-task code's edge loss (pos_weight 0.95 PASCAL, 0.8 NYUD). Exactly ATRC / InvPT's
    /// <c>BalancedBinaryCrossEntropyLoss</c>: mean over non-ignored pixels of
    /// w * y * softplus(-x) + (1 - w) * (1 - y) * softplus(x) (0 when every pixel is ignored).</summary>
    public static Tensor BalancedBce(Tensor logits, Tensor target, float posWeight, float ignoreValue = 255f)
    {
        const string op = "balanced_bce";
        SameShape(op, logits, target);
        Float(op, logits); Float(op, target);
        if (!(posWeight >= 0f && posWeight <= 1f)) throw new ArgumentException($"{op}: pos_weight {posWeight} outside [0, 1]");
        var d = logits.Device;
        var stats = Tensor.Empty(d, 2); // [loss, valid pixels]
        Losses.BalancedBce(d, stats.Data, logits.Data, target.Data, posWeight, ignoreValue);
        var y = ScalarOf(stats, op);
        return RecordLoss(y, op, [logits], g =>
        {
            var dx = Tensor.Empty(d, logits.Shape);
            Losses.BalancedBceBackward(d, dx.Data, g.Data, stats.Data, logits.Data, target.Data, posWeight, ignoreValue);
            Autograd.Accumulate(logits, dx);
            stats.Dispose();
        }, stats);
    }

    /// <summary>Records a loss; the saved temporaries are freed right after the backward has used
    /// them, or at once when nothing is recorded (the current scope would free them otherwise).</summary>
    static Tensor RecordLoss(Tensor y, string op, Tensor[] inputs, Action<Tensor> backward, params Tensor[] saved)
    {
        Autograd.Record(y, op, inputs, backward);
        if (y.Creator == null) foreach (var t in saved) t.Dispose();
        return y;
    }

    /// <summary>The loss as a rank-0 tensor: a copy of stats[0] (stats stays alive for backward,
    /// owned by the current scope).</summary>
    static Tensor ScalarOf(Tensor stats, string op)
    {
        var y = Tensor.Empty(stats.Device);
        Elementwise.Axpby(stats.Device, y.Data, stats.Data.Slice(0, 1), 1f, 0f);
        y.Name = op;
        return y;
    }
}
