using Ccr.Kernels;
using Ccr.Training.Data;
using Ccr.Training.MultiTask;

namespace Ccr.Training.Reporting;

/// <summary>
/// A run's TensorBoard log beside metrics.csv (train.tensorboard): every column of each metrics.csv
/// row as scalar "train/COLUMN" at the row's step; after each evaluation every metric as
/// "eval/TASK/METRIC" (and "eval/delta_m"), and the colourised predictions of the first
/// <see cref="Images"/> validation images as "predictions/ID" (the input, then each task, as
/// <c>infer</c> draws them). Evaluations are logged at the index of the last step trained before
/// them, so a resumed run's START marker (at its first step) keeps them.
/// </summary>
public sealed class TensorBoardLog : IDisposable
{
    public const int Images = 3;
    readonly TensorBoardWriter _w;
    public string FilePath => _w.Path;

    public TensorBoardLog(string runDir, long? resumedAt = null)
    {
        _w = new TensorBoardWriter(runDir);
        if (resumedAt is long s) _w.SessionStart(s);
    }

    /// <summary>One metrics.csv row (its "step" column gives the step; "step" itself is not a series).</summary>
    public void Row(IReadOnlyDictionary<string, double> row)
    {
        long step = row.TryGetValue("step", out var s) ? (long)s : 0;
        _w.Scalars(step, row.Where(kv => kv.Key != "step").Select(kv => ("train/" + kv.Key, kv.Value)));
    }

    public void Eval(long step, Dictionary<string, Dictionary<string, double>> metrics, double? deltaM)
    {
        var values = metrics.SelectMany(t => t.Value.Select(m => ($"eval/{t.Key}/{m.Key}", m.Value))).ToList();
        if (deltaM is double dm) values.Add(("eval/delta_m", dm));
        _w.Scalars(step, values);
    }

    /// <summary>The pictures of the first few images of <paramref name="data"/>, predicted one at a
    /// time at full resolution as <c>infer</c> does.</summary>
    public void Predictions(long step, MultiTaskModel model, Device device, IDataset data, float depthMax = 10f)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            for (int i = 0; i < Math.Min(Images, data.Count); i++)
            {
                var s = data.Get(i);
                var preds = Inference.Predict(model, device, s.Image, s.Height, s.Width);
                var tiles = new List<byte[]> { Visualize.Image(s.Image, s.Height, s.Width) };
                foreach (var (task, p) in preds) tiles.Add(Visualize.Colour(task, p, s.Height, s.Width, depthMax));
                var pic = Visualize.SideBySide(tiles, s.Height, s.Width, out int width);
                _w.Image(step, $"predictions/{s.Id}", pic, s.Height, width);
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    public void Dispose() => _w.Dispose();
}
