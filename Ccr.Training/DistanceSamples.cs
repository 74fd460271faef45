using Ccr.Kernels.Contrastive;
using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>
/// Positive and negative pair distances for the paper's Figures 1 and 5: for a (target, source)
/// task pair, anchors on the validation set's target-task feature maps, positives and negatives
/// defined by the source task's labels, distances between L2-normalised features. Pairs are drawn
/// uniformly (the "basic" sampler), not mined, so the histograms show the distributions themselves;
/// and the plain task features are used for every model, so a baseline (which has no projector)
/// and a CCR model are measured in the same space.
/// </summary>
public static class DistanceSamples
{
    public sealed record Pair(string Target, string Source, float[] Pos, float[] Neg);

    /// <summary>The figure's default pairs: the paper's (depth features, normals labels) and
    /// (semseg features, depth labels), restricted to the run's tasks; else the first two tasks.</summary>
    public static List<(string Target, string Source)> DefaultPairs(IReadOnlyList<string> tasks)
    {
        var wanted = new List<(string, string)> { ("depth", "normals"), ("semseg", "depth") };
        var r = wanted.Where(p => tasks.Contains(p.Item1) && tasks.Contains(p.Item2)).ToList();
        if (r.Count == 0 && tasks.Count > 1) r.Add((tasks[0], tasks[1]));
        return r;
    }

    public static List<Pair> Collect(TrainSession s, IReadOnlyList<(string Target, string Source)> pairs,
                                     int images = 32, int batchSize = 4, int seed = 7)
    {
        var result = new List<Pair>();
        bool wasTraining = s.Model.Training;
        s.Model.Eval();
        try
        {
            foreach (var (target, source) in pairs)
            {
                var cfg = s.Config.Ccr with
                {
                    Sharing = ProjectorSharing.None,
                    Sampling = Ccr.Kernels.Contrastive.CcrSampling.Basic,
                    Pairs = PairSelection.AllPairs,
                    RampEpochs = 0,
                    CollectSamples = true,
                    Gamma = Math.Max(s.Config.Ccr.Gamma, 0.05f), // more anchors per image than training uses: a figure wants samples
                };
                var channels = new List<(string, int)>
                {
                    (target, s.Model.Decoders[target].FeatureChannels), (source, s.Model.Decoders[source].FeatureChannels),
                };
                var ccr = new CcrLoss(s.Device, new Rng((ulong)seed), cfg, channels, (ulong)seed);
                var pos = new List<float>();
                var neg = new List<float>();
                int n = Math.Min(images, s.ValSet.Count);
                for (int start = 0; start < n; start += batchSize)
                {
                    int m = Math.Min(batchSize, n - start);
                    var samples = new Sample[m];
                    Parallel.For(0, m, i => samples[i] = s.ValSet.Get(start + i));
                    var batch = Batch.Stack(samples, Enumerable.Range(start, m).ToArray());
                    using var scope = new TensorScope();
                    using var _ = new NoGrad();
                    var db = DeviceBatch.Create(s.Device, batch, [source], s.Info, forCcr: true);
                    try
                    {
                        var outputs = s.Model.Forward(db.Images);
                        var (_, diag) = ccr.Forward(new Dictionary<string, Tensor> { [target] = outputs[target].Features, [source] = outputs[source].Features },
                                                    new Dictionary<string, TaskLabels> { [source] = db.CcrLabels[source] }, epoch: 1e9);
                        foreach (var p in diag.Resolve().Pairs)
                        {
                            pos.AddRange(p.PosSamples ?? []);
                            neg.AddRange(p.NegSamples ?? []);
                        }
                    }
                    finally { db.DisposeCcrLabels(); }
                }
                ccr.DisposeTensors();
                result.Add(new Pair(target, source, pos.ToArray(), neg.ToArray()));
            }
        }
        finally
        {
            s.Model.Train(wasTraining);
        }
        return result;
    }

    public static void Save(string path, IReadOnlyList<Pair> pairs) =>
        File.WriteAllText(path, JsonSerializer.Serialize(pairs.Select(p => new { target = p.Target, source = p.Source, pos = p.Pos, neg = p.Neg })));

    public static List<Pair> Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().Select(e => new Pair(
            e.GetProperty("target").GetString()!, e.GetProperty("source").GetString()!,
            e.GetProperty("pos").EnumerateArray().Select(x => x.GetSingle()).ToArray(),
            e.GetProperty("neg").EnumerateArray().Select(x => x.GetSingle()).ToArray())).ToList();
    }
}
