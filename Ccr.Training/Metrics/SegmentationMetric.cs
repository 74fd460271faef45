using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// mIoU and pixel accuracy (semseg, human parts) as docs/guide/PROTOCOLS.md defines them: TP / FP / FN per
/// class summed over the whole dataset, label 255 ignored, IoU_c = TP / max(TP + FP + FN, eps),
/// mean over all classes (a class absent from both labels and predictions counts as 0);
/// pixAcc = correct / valid pixels. A predicted index outside [0, C) is wrong everywhere
/// (an FN of the true class, no FP).
/// </summary>
public sealed class SegmentationMetric : ITaskMetric
{
    private const double Eps = 1e-8;
    private readonly long[] _tp, _fp, _fn;
    private long _valid, _correct;

    public int Classes { get; }
    public string Task { get; }

    public SegmentationMetric(int classes, string task = TaskNames.Semseg)
    {
        if (classes < 1) throw new ArgumentException($"{task}: {classes} classes");
        Classes = classes;
        Task = task;
        _tp = new long[classes];
        _fp = new long[classes];
        _fn = new long[classes];
    }

    public void Update(ReadOnlySpan<int> pred, ReadOnlySpan<int> label)
    {
        if (pred.Length != label.Length) throw new ArgumentException($"{Task}: prediction has {pred.Length} pixels, label {label.Length}");
        for (int i = 0; i < label.Length; i++)
        {
            int g = label[i];
            if (g == Sample.Ignore) continue;
            if ((uint)g >= (uint)Classes) throw new ArgumentException($"{Task}: label {g} out of range 0..{Classes - 1}");
            int p = pred[i];
            _valid++;
            if (p == g) { _tp[g]++; _correct++; continue; }
            _fn[g]++;
            if ((uint)p < (uint)Classes) _fp[p]++;
        }
    }

    public void Update(object prediction, Sample label)
    {
        var l = MetricChecks.Label(Task == TaskNames.HumanParts ? label.Parts : label.Semseg, label, Task);
        Update(MetricChecks.Prediction<int>(prediction, Task), l);
    }

    /// <summary>IoU of every class.</summary>
    public double[] ClassIoU()
    {
        var r = new double[Classes];
        for (int c = 0; c < Classes; c++) r[c] = _tp[c] / Math.Max(_tp[c] + _fp[c] + _fn[c], Eps);
        return r;
    }

    /// <summary>Counts: TP, FP, FN per class, then valid and correct pixels.</summary>
    public MetricState ExportState() => new() { Counts = [.. _tp, .. _fp, .. _fn, _valid, _correct] };

    public void LoadState(MetricState s)
    {
        if (s.Counts.Length != 3 * Classes + 2) throw new ArgumentException($"{Task}: state of {s.Counts.Length} counts, expected {3 * Classes + 2}");
        Array.Copy(s.Counts, 0, _tp, 0, Classes);
        Array.Copy(s.Counts, Classes, _fp, 0, Classes);
        Array.Copy(s.Counts, 2 * Classes, _fn, 0, Classes);
        _valid = s.Counts[3 * Classes];
        _correct = s.Counts[3 * Classes + 1];
    }

    public Dictionary<string, double> Compute() => new()
    {
        ["mIoU"] = ClassIoU().Average(),
        ["pixAcc"] = _correct / Math.Max(_valid, Eps),
    };
}
