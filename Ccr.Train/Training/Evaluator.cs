using Ccr.Nn;
using Ccr.Train.Data;
using Ccr.Train.Metrics;

namespace Ccr.Train.Training;

/// <summary>
/// Runs the plain multi-task network (no regulariser) over a dataset at full resolution and scores
/// it with the reference metrics. Samples of different sizes are padded into a batch and the
/// predictions cropped back to each sample's size.
/// </summary>
public static class Evaluator
{
    public static Dictionary<string, Dictionary<string, double>> Run(TrainSession s, IDataset data, int batchSize,
                                                                      PredictionWriter? writer = null, int? limit = null)
    {
        var model = s.Model;
        var tasks = model.Tasks.Select(t => t.Name).ToList();
        var metrics = new MetricSet(data.Info, tasks);
        bool wasTraining = model.Training;
        model.Eval();
        int count = Math.Min(data.Count, limit ?? int.MaxValue);
        try
        {
            for (int start = 0; start < count; start += batchSize)
            {
                int n = Math.Min(batchSize, count - start);
                var samples = new Sample[n];
                Parallel.For(0, n, i => samples[i] = data.Get(start + i));
                var batch = Batch.Stack(samples, Enumerable.Range(start, n).ToArray());
                using var scope = new TensorScope();
                using var _ = new NoGrad();
                var x = Tensor.FromArray(s.Device, batch.Images, n, 3, batch.Height, batch.Width);
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
        return metrics.Compute();
    }
}
