using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Training.MultiTask;

namespace Ccr.Training.Export;

/// <summary>
/// Our eval forward beside ONNX Runtime's on the same input: <see cref="Ours"/> pads to the backbone's
/// stride, runs the network and crops each task's output back, as <see cref="Evaluator"/> does;
/// <see cref="Compare"/> reports per task the largest absolute difference and the range of our output
/// (the bound the tests and <c>export</c> check is max |diff| &lt;= tolerance x max(range, 1)).
/// </summary>
public static class OnnxParity
{
    public sealed record TaskDiff(string Task, double MaxAbs, double Range)
    {
        public double Relative => MaxAbs / Math.Max(Range, 1.0);
    }

    /// <summary>The network on x (N, 3, H, W), each task's output cropped to (N, K, H, W).</summary>
    public static Dictionary<string, float[]> Ours(MultiTaskModel model, Device device, float[] x, int n, int h, int w)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            var (xp, ph, pw) = Evaluator.PadToStride(x, n, h, w);
            using var scope = new TensorScope();
            using var _ = new NoGrad();
            var outs = model.Forward(Tensor.FromArray(device, xp, n, 3, ph, pw));
            var r = new Dictionary<string, float[]>();
            foreach (var (task, o) in outs)
            {
                int k = o.Prediction.Dim(1);
                var full = o.Prediction.ToArray();
                var crop = new float[n * k * h * w];
                for (int p = 0; p < n * k; p++)
                    for (int y = 0; y < h; y++) Array.Copy(full, (p * ph + y) * pw, crop, (p * h + y) * w, w);
                r[task] = crop;
            }
            return r;
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>A normalised-looking random input: uniform [0, 1) pixels through training's normalisation.</summary>
    public static float[] RandomImage(int n, int h, int w, int seed)
    {
        var rng = new Random(seed);
        var img = new float[n * 3 * h * w];
        for (int b = 0; b < n; b++)
        {
            var raw = new float[3 * h * w];
            for (int i = 0; i < raw.Length; i++) raw[i] = rng.NextSingle();
            Data.Augment.Normalize(raw, img.AsSpan(b * 3 * h * w, 3 * h * w), h * w);
        }
        return img;
    }

    public static List<TaskDiff> Compare(MultiTaskModel model, Device device, OnnxRunner onnx, float[] x, int n, int h, int w)
    {
        var ours = Ours(model, device, x, n, h, w);
        var theirs = onnx.Run(x, n, h, w);
        var r = new List<TaskDiff>();
        foreach (var task in onnx.Tasks)
        {
            var a = ours[task];
            var (b, shape) = theirs[task];
            int k = a.Length / (n * h * w);
            if (!shape.SequenceEqual([n, k, h, w]))
                throw new InvalidDataException($"onnx parity: {task} has shape [{string.Join(", ", shape)}] under ONNX Runtime, ours is [{n}, {k}, {h}, {w}]");
            double maxAbs = 0, lo = double.MaxValue, hi = double.MinValue;
            for (int i = 0; i < a.Length; i++)
            {
                if (!float.IsFinite(a[i]) || !float.IsFinite(b[i])) { maxAbs = double.PositiveInfinity; continue; }
                maxAbs = Math.Max(maxAbs, Math.Abs((double)a[i] - b[i]));
                lo = Math.Min(lo, a[i]); hi = Math.Max(hi, a[i]);
            }
            r.Add(new TaskDiff(task, maxAbs, hi - lo));
        }
        return r;
    }
}
