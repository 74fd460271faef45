using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Training.Data;
using Ccr.Training.MultiTask;

namespace Ccr.Training;

/// <summary>Predictions of every task for one image, by our network or by an ONNX export of it.</summary>
public static class Inference
{
    /// <summary>The same predictions from an ONNX export (which pads and crops inside its graph).</summary>
    public static List<(string Task, object Prediction)> PredictOnnx(Export.OnnxRunner runner, float[] img, int h, int w)
    {
        var norm = new float[3 * h * w];
        Augment.Normalize(img, norm, h * w);
        var outs = runner.Run(norm, 1, h, w);
        return runner.Tasks.Select(t => (t, Predictions.From(t, outs[t].Data, 1, outs[t].Shape[1], h, w, 0, h, w))).ToList();
    }

    /// <summary>Predictions of every task for one image (3, H, W) in [0, 1]; the input is padded to
    /// a multiple of 32 (the backbone's stride) and the outputs cropped back.</summary>
    public static List<(string Task, object Prediction)> Predict(MultiTaskModel model, Device device, float[] img, int h, int w)
    {
        var norm = new float[3 * h * w];
        Augment.Normalize(img, norm, h * w);
        var (x, ph, pw) = Evaluator.PadToStride(norm, 1, h, w);
        using var scope = new TensorScope();
        using var _ = new NoGrad();
        var outputs = model.Forward(Tensor.FromArray(device, x, 1, 3, ph, pw));
        var r = new List<(string, object)>();
        foreach (var t in model.Tasks)
        {
            var o = outputs[t.Name].Prediction;
            r.Add((t.Name, Predictions.From(t.Name, o.ToArray(), 1, o.Dim(1), o.Dim(2), o.Dim(3), 0, h, w)));
        }
        return r;
    }
}
