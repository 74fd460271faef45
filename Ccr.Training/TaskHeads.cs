using Ccr.Nn;
using Ccr.Nn.Functional;

namespace Ccr.Training;

/// <summary>
/// What each task predicts and how it is trained (docs/guide/PROTOCOLS.md): output channels, the loss on the
/// raw network output, and the conversion of the output to the prediction that metrics score.
/// </summary>
public static class TaskHeads
{
    /// <summary>Channels of a task's network output, given its number of classes.</summary>
    public static int OutChannels(string task, int classes) => task switch
    {
        "semseg" or "human_parts" => classes,
        "depth" => 1,
        "normals" => 3,
        "edge" => 1,
        "sal" => 2, // 2-class cross-entropy, as the reference code
        _ => throw new ArgumentException($"unknown task '{task}'"),
    };

    /// <summary>Saliency's class weights [1 - w, w] for a batch whose valid pixels are a share
    /// <paramref name="negativeShare"/> of negatives.</summary>
    public static float[] SaliencyWeights(double negativeShare) => [(float)(1 - negativeShare), (float)negativeShare];

    /// <summary>
    /// The task's loss on <paramref name="output"/> (N, C, H, W) at label resolution.
    /// semseg / parts: cross-entropy, ignore 255. depth: L1 over valid pixels. normals: L1 between the
    /// L2-normalised output and the label over valid pixels, summed over channels. edge: balanced
    /// BCE with logits (w = 0.95 PASCAL, 0.8 otherwise). sal: 2-class cross-entropy with class
    /// weights (1 - w, w), w = share of negative pixels in the batch.
    /// </summary>
    public static Tensor Loss(string task, Tensor output, DeviceBatch batch, double edgePosWeight)
    {
        switch (task)
        {
            case "semseg":
            case "human_parts":
                return F.CrossEntropy(output, batch.IntLabels[task], 255);
            case "sal":
            {
                if (batch.SaliencyWeights.IsValid) // the trainer's step scalars: no upload inside the step
                    return F.CrossEntropy(output, batch.IntLabels[task], 255, batch.SaliencyWeights);
                double w = batch.SaliencyNegativeShare;
                return F.CrossEntropy(output, batch.IntLabels[task], 255, SaliencyWeights(w));
            }
            case "depth":
                return F.MaskedL1(output, batch.FloatLabels[task]);
            case "normals":
                return F.MaskedL1(F.L2Normalize(output), batch.FloatLabels[task]);
            case "edge":
                return F.BalancedBce(output, batch.FloatLabels[task], (float)edgePosWeight);
            default:
                throw new ArgumentException($"unknown task '{task}'");
        }
    }
}

/// <summary>Host-side conversion of network outputs into the predictions metrics and files take.</summary>
public static class Predictions
{
    /// <summary>
    /// Sample <paramref name="b"/> of a task's output (N, C, H, W) as a prediction cropped to
    /// <paramref name="h"/> x <paramref name="w"/>: class indices (argmax) for semseg / parts,
    /// metres clamped at 0 for depth, the raw 3-vector for normals, sigmoid for edge, softmax
    /// foreground probability for saliency.
    /// </summary>
    public static object From(string task, float[] output, int n, int c, int H, int W, int b, int h, int w)
    {
        int hw = h * w, HW = H * W;
        int Src(int ch, int y, int x) => ((b * c + ch) * H + y) * W + x;
        switch (task)
        {
            case "semseg" or "human_parts":
            {
                var p = new int[hw];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int best = 0; float bv = output[Src(0, y, x)];
                        for (int ch = 1; ch < c; ch++) { float v = output[Src(ch, y, x)]; if (v > bv) { bv = v; best = ch; } }
                        p[y * w + x] = best;
                    }
                return p;
            }
            case "depth" or "edge":
            {
                var p = new float[hw];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        float v = output[Src(0, y, x)];
                        p[y * w + x] = task == "depth" ? MathF.Max(v, 0f) : 1f / (1f + MathF.Exp(-v));
                    }
                return p;
            }
            case "normals":
            {
                var p = new float[3 * hw];
                for (int ch = 0; ch < 3; ch++)
                    for (int y = 0; y < h; y++)
                        for (int x = 0; x < w; x++) p[ch * hw + y * w + x] = output[Src(ch, y, x)];
                return p;
            }
            case "sal":
            {
                var p = new float[hw];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        float a = output[Src(0, y, x)], f = output[Src(1, y, x)];
                        p[y * w + x] = 1f / (1f + MathF.Exp(a - f));
                    }
                return p;
            }
            default: throw new ArgumentException($"unknown task '{task}'");
        }
    }
}
