using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Functional;

namespace Ccr.Training;

/// <summary>
/// Where the regulariser acts in a trained multi-task model with CCR, measured on a few training
/// batches (train mode, as a training step sees them):
/// <list type="bullet">
/// <item>per (target, source) pair, every ordered pair whatever the run's pair selection: anchors
/// per image, the share of anchors with a positive, the share with a triplet (a positive and a
/// semi-hard negative: <c>ccr_valid_anchors</c>), the share of triplets whose hinge is active, the
/// mean positive and negative distances and the pair's loss;</item>
/// <item>per loss term (each task's loss times its weight, and CCR with lambda applied): the L2
/// norm of its gradient on the shared backbone, on each task decoder and on the projectors, and the
/// cosine between CCR's backbone gradient and the task losses' summed backbone gradient.</item>
/// </list>
/// Each term is back-propagated from its own forward pass with the regulariser's sampling generator
/// reset to one state, so the terms' gradients add up to the gradient of the training loss.
/// </summary>
public static class CcrProbe
{
    public sealed record PairStats(string Target, string Source, double AnchorsPerImage, double WithPositive,
        double WithTriplet, double ActiveTriplets, double MeanPos, double MeanNeg, double Loss);

    /// <param name="GradNorms">term → parameter group → mean gradient L2 norm over the batches</param>
    /// <param name="BackboneCosine">mean over batches of cos(∇backbone CCR, ∇backbone Σ tasks)</param>
    /// <param name="TasksBackboneNorm">mean over batches of ‖∇backbone Σ tasks‖, the task losses' joint pull</param>
    /// <param name="Losses">term → mean loss value (weighted) over the batches</param>
    public sealed record Result(int Batches, List<PairStats> Pairs, Dictionary<string, Dictionary<string, double>> GradNorms,
                                double BackboneCosine, double TasksBackboneNorm, Dictionary<string, double> Losses)
    {
        public void Save(string path) => File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(this, RunLog.Json));
        public static Result Load(string path) =>
            System.Text.Json.JsonSerializer.Deserialize<Result>(File.ReadAllText(path)) ?? throw new IOException($"{path}: empty");
    }

    /// <summary>Parameter group of a parameter of <see cref="TrainModule"/>: backbone, fpn,
    /// decoder:&lt;task&gt;, projectors, or other.</summary>
    public static string Group(string name) =>
        name.StartsWith("model.backbone.") ? "backbone"
        : name.StartsWith("model.fpn.") ? "fpn"
        : name.StartsWith("model.decoders.") ? "decoder:" + name["model.decoders.".Length..].Split('.')[0]
        : name.StartsWith("ccr.") ? "projectors" : "other";

    public static Result Measure(TrainSession s, int batches = 4, int epoch = 0)
    {
        var ccr = s.CcrLoss ?? throw new ArgumentException("CcrProbe: the run has no CCR");
        var c = s.Config;
        var names = s.Root.NamedParameters().Select(p => p.Name).ToList();
        var offsets = s.Arena.Offsets;
        long total = s.Arena.Count;
        var terms = c.Tasks.Select(t => t).Append("ccr").ToList();
        var norms = terms.ToDictionary(t => t, _ => new Dictionary<string, double>());
        var losses = terms.ToDictionary(t => t, _ => 0.0);
        var pairAcc = new Dictionary<(string, string), double[]>();
        double cosine = 0, tasksNorm = 0;
        int n = Math.Min(batches, s.Loader.BatchesPerEpoch);
        var savedRng = ccr.SamplingRng;
        var savedCounter = ccr.Counter.ToIntArray();
        try
        {
            for (int b = 0; b < n; b++)
            {
                var batch = s.Loader.MakeBatch(epoch, b);
                var rngState = new Rng(ccr.SamplingRng.State, ccr.SamplingRng.Inc, raw: true);
                var counter = ccr.Counter.ToIntArray();
                PairsOf(s, batch, b, pairAcc);
                float[]? tasksBackbone = null, ccrBackbone = null;
                foreach (var term in terms)
                {
                    // the same pairs (host generator) and anchors (device counter) for every term
                    ccr.SamplingRng = new Rng(rngState.State, rngState.Inc, raw: true);
                    ccr.Counter.IntData.CopyFrom(counter);
                    var g = Gradient(s, batch, term, out double value);
                    losses[term] += value / n;
                    var groupSq = new Dictionary<string, double>();
                    for (int i = 0; i < names.Count; i++)
                    {
                        long end = i + 1 < offsets.Count ? offsets[i + 1] : total;
                        double sq = 0;
                        for (long k = offsets[i]; k < end; k++) sq += (double)g[k] * g[k];
                        string grp = Group(names[i]);
                        groupSq[grp] = groupSq.GetValueOrDefault(grp) + sq;
                    }
                    foreach (var (grp, sq) in groupSq) norms[term][grp] = norms[term].GetValueOrDefault(grp) + Math.Sqrt(sq) / n;
                    var bb = Backbone(g, names, offsets, total);
                    if (term == "ccr") ccrBackbone = bb;
                    else if (tasksBackbone == null) tasksBackbone = bb;
                    else for (int k = 0; k < bb.Length; k++) tasksBackbone[k] += bb[k];
                }
                cosine += Cosine(ccrBackbone!, tasksBackbone!) / n;
                tasksNorm += Math.Sqrt(tasksBackbone!.Sum(v => (double)v * v)) / n;
            }
        }
        finally
        {
            ccr.SamplingRng = savedRng;
            ccr.Counter.IntData.CopyFrom(savedCounter);
            s.Arena.ZeroGrad();
        }
        var pairs = pairAcc.Select(kv => new PairStats(kv.Key.Item1, kv.Key.Item2, kv.Value[0] / n, kv.Value[1] / n,
            kv.Value[2] / n, kv.Value[3] / n, kv.Value[4] / n, kv.Value[5] / n, kv.Value[6] / n)).ToList();
        return new Result(n, pairs, norms, cosine, tasksNorm, losses);
    }

    /// <summary>The flat parameter gradient (the arena's order) of one loss term on <paramref name="batch"/>:
    /// a task's loss times its weight, or "ccr" with lambda fully ramped up.</summary>
    public static float[] Gradient(TrainSession s, Data.Batch batch, string term, out double value)
    {
        var c = s.Config;
        using var scope = new TensorScope();
        var db = DeviceBatch.Create(s.Device, batch, c.Tasks, s.Info, forCcr: true);
        try
        {
            var outputs = s.Model.Forward(db.Images);
            Tensor loss;
            if (term == "ccr")
                loss = s.CcrLoss!.Forward(outputs.ToDictionary(o => o.Key, o => o.Value.Features), db.CcrLabels, epoch: 1e9).Loss;
            else
                loss = F.WeightedSum([TaskHeads.Loss(term, outputs[term].Prediction, db, s.Info.EdgePosWeight)],
                                     [c.LossWeights.TryGetValue(term, out var w) ? w : 1f]);
            value = loss.Item();
            s.Arena.ZeroGrad();
            if (loss.RequiresGrad) loss.Backward();
            return s.Arena.Grads.ToArray();
        }
        finally { db.DisposeCcrLabels(); }
    }

    /// <summary>Mining statistics of every ordered pair on one batch (no gradient).</summary>
    static void PairsOf(TrainSession s, Data.Batch batch, int batchIndex, Dictionary<(string, string), double[]> acc)
    {
        var ccr = s.CcrLoss!;
        var cfg = ccr.Config;
        const ulong probeSeed = 0x9E3779B9UL; // the probe's own anchor stream, apart from training's
        using var scope = new TensorScope();
        var counter = Tensor.FromArray(s.Device, [batchIndex * 64], 1);
        using var _ = new NoGrad();
        var db = DeviceBatch.Create(s.Device, batch, s.Config.Tasks, s.Info, forCcr: true);
        try
        {
            var outputs = s.Model.Forward(db.Images);
            foreach (var t in s.Config.Tasks)
                foreach (var src in s.Config.Tasks.Where(x => x != t && db.CcrLabels.ContainsKey(x)))
                {
                    var f = outputs[t].Features;
                    var proj = cfg.Sharing == ProjectorSharing.None ? F.L2Normalize(f) : ccr.ProjectorFor(t, src).Forward(f);
                    var lab = db.CcrLabels[src].Resized(proj.Dim(2), proj.Dim(3));
                    var anchorTensor = CcrOps.SampleAnchors(lab, cfg.AnchorsPerImage(proj.Dim(2), proj.Dim(3)), counter, probeSeed);
                    var loss = CcrOps.PairLoss(proj, lab, anchorTensor, cfg, counter, (uint)probeSeed, out var r, collect: true);
                    Kernels.Contrastive.CcrAnchors.Advance(s.Device, counter.IntData);
                    var anchors = anchorTensor.ToIntArray();
                    int nb = proj.Dim(0), perRow = r.NegIdx!.Length / r.PosIdx!.Length;
                    int sampled = anchors.Count(a => a >= 0), withPos = 0, withTriplet = 0;
                    for (int row = 0; row < anchors.Length; row++)
                    {
                        if (anchors[row] < 0 || r.PosIdx[row] < 0) continue;
                        withPos++;
                        bool any = false;
                        for (int j = 0; j < perRow; j++) any |= r.NegIdx[row * perRow + j] >= 0;
                        if (any) withTriplet++;
                    }
                    var st = r.Stats.ToArray();
                    float S(Kernels.Contrastive.CcrTriplet.Stat k) => st[(int)k];
                    float triplets = S(Kernels.Contrastive.CcrTriplet.Stat.Triplets), valid = S(Kernels.Contrastive.CcrTriplet.Stat.AnchorsWithTriplet);
                    if (!acc.TryGetValue((t, src), out var a)) acc[(t, src)] = a = new double[7];
                    a[0] += sampled / (double)nb;
                    a[1] += sampled > 0 ? withPos / (double)sampled : 0;
                    a[2] += sampled > 0 ? withTriplet / (double)sampled : 0;
                    a[3] += triplets > 0 ? S(Kernels.Contrastive.CcrTriplet.Stat.ActiveTriplets) / triplets : 0;
                    a[4] += valid > 0 ? S(Kernels.Contrastive.CcrTriplet.Stat.PosDistSum) / valid : 0;
                    a[5] += triplets > 0 ? S(Kernels.Contrastive.CcrTriplet.Stat.NegDistSum) / triplets : 0;
                    a[6] += loss.Item();
                }
        }
        finally { db.DisposeCcrLabels(); }
    }

    static float[] Backbone(float[] g, List<string> names, IReadOnlyList<long> offsets, long total)
    {
        var parts = new List<float>();
        for (int i = 0; i < names.Count; i++)
            if (Group(names[i]) == "backbone")
            {
                long end = i + 1 < offsets.Count ? offsets[i + 1] : total;
                for (long k = offsets[i]; k < end; k++) parts.Add(g[k]);
            }
        return parts.ToArray();
    }

    static double Cosine(float[] a, float[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
        return aa > 0 && bb > 0 ? ab / Math.Sqrt(aa * bb) : 0;
    }
}
