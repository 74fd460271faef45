using Ccr.Nn;
using Ccr.Training.Data;
using Ccr.Training.Metrics;

namespace Ccr.Training;

/// <summary>
/// Runs the plain multi-task network (no regulariser) over a dataset at full resolution and scores
/// it with the reference metrics. Samples of different sizes are padded into a batch and the
/// predictions cropped back to each sample's size.
/// [distributed] With several ranks each scores the batches r, r + N, r + 2N, ... (the very batches
/// one process would form, so the predictions are the same) with rank 0's running statistics, and
/// the metric accumulators are summed over the ranks: every rank returns the metrics of the whole
/// set, equal to one process's (counts exactly, double sums up to the order of addition).
/// </summary>
public static class Evaluator
{
    public static Dictionary<string, Dictionary<string, double>> Run(TrainSession s, IDataset data, int batchSize,
                                                                      PredictionWriter? writer = null, int? limit = null)
    {
        DataParallel.DistributedTraining.ShareBuffers(s); // [distributed] rank 0's running statistics
        return Run(s.Model, s.Device, data, batchSize, writer, limit, s.Dist);
    }

    /// <summary>Scores <paramref name="model"/> (eval and infer need only the network, not a training
    /// session); [distributed] each of <paramref name="dist"/>'s ranks scores its share of the batches.</summary>
    public static Dictionary<string, Dictionary<string, double>> Run(MultiTask.MultiTaskModel model, Kernels.Device device, IDataset data,
                                                                      int batchSize, PredictionWriter? writer = null, int? limit = null,
                                                                      DataParallel.DistContext? dist = null)
    {
        dist ??= DataParallel.DistContext.Single;
        var tasks = model.Tasks.Select(t => t.Name).ToList();
        var metrics = new MetricSet(data.Info, tasks);
        bool wasTraining = model.Training;
        model.Eval();
        int count = Math.Min(data.Count, limit ?? int.MaxValue);
        try
        {
            for (int start = dist.Rank * batchSize; start < count; start += batchSize * dist.Size)
            {
                int n = Math.Min(batchSize, count - start);
                var samples = new Sample[n];
                Parallel.For(0, n, i => samples[i] = data.Get(start + i));
                var batch = Batch.Stack(samples, Enumerable.Range(start, n).ToArray());
                using var scope = new TensorScope();
                using var _ = new NoGrad();
                var (img, ph, pw) = PadToStride(batch.Images, n, batch.Height, batch.Width);
                var x = Tensor.FromArray(device, img, n, 3, ph, pw);
                var outputs = model.Forward(x);
                foreach (var t in tasks)
                {
                    var o = outputs[t].Prediction;
                    var host = o.ToArray();
                    for (int b = 0; b < n; b++)
                    {
                        var pred = Predictions.From(t, host, n, o.Dim(1), o.Dim(2), o.Dim(3), b, samples[b].Height, samples[b].Width);
                        metrics.Update(t, pred, samples[b]);
                        writer?.Write(t, samples[b].Id, pred, samples[b].Height, samples[b].Width);
                    }
                }
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        metrics.AllReduce(dist.Comm); // [distributed] sums over every rank's shard
        return metrics.Compute();
    }

    /// <summary>Images (N, 3, H, W) zero-padded at the bottom and right to multiples of the backbone's
    /// stride (32), so that every resolution level lines up; predictions are cropped back.</summary>
    public static (float[] Images, int H, int W) PadToStride(float[] images, int n, int h, int w, int stride = 32)
    {
        int ph = (h + stride - 1) / stride * stride, pw = (w + stride - 1) / stride * stride;
        if (ph == h && pw == w) return (images, h, w);
        var x = new float[n * 3 * ph * pw];
        for (int p = 0; p < n * 3; p++)
            for (int y = 0; y < h; y++) Array.Copy(images, (p * h + y) * w, x, (p * ph + y) * pw, w);
        return (x, ph, pw);
    }
}
