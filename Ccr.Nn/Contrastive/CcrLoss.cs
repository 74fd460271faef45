using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Contrastive;

/// <summary>
/// Cross-task contrastive regularisation as a plug-in loss (the paper's CCR module). Holds the
/// projectors (shared as <see cref="CcrConfig.Sharing"/> says) and, each step, draws the task pairs,
/// projects each target's final feature map, mines triplets against the source's labels on the
/// device and returns lambda(epoch) * sum over pairs of the mean triplet loss. The loss exists only
/// in training: inference runs the plain multi-task network.
/// A step is split for CUDA graphs: <see cref="NextPairs"/> and <see cref="SetLambda"/> are host
/// decisions made before the step (the pairs decide which kernels run, so they key the graph; the
/// lambda ramp goes into a <see cref="StepScalars"/> slot that the kernels read), then
/// <see cref="Forward(IReadOnlyDictionary{string, Tensor}, IReadOnlyDictionary{string, TaskLabels}, IReadOnlyList{ValueTuple{string, string}}, double)"/>
/// only launches.
/// Randomness: the task pairs come from a host <see cref="Rng"/> (they decide which kernels run);
/// anchors and the Basic variant's choices come from a counter-based hash whose counter lives on
/// the device (the buffer "rng_counter", advanced by a kernel after every pair, saved with the
/// model's state), so a step reads nothing random from the host and a replayed CUDA graph or a
/// resumed run draws exactly as an uninterrupted one.
/// </summary>
public sealed class CcrLoss : Module
{
    public CcrConfig Config { get; }
    public IReadOnlyList<string> Tasks { get; }
    public TaskPairSampler Sampler { get; }
    readonly Dictionary<string, Projector> _projectors = new();
    readonly Tensor _counter;
    readonly ulong _seed;
    readonly ScalarSlot _lambda;  // [lambda(epoch)] read by the kernels that weight the pairs' losses
    readonly StepScalars? _ownScalars;
    Rng _rng;

    /// <summary>The device counter of the anchor / mining streams (int32, one element), a module
    /// buffer: checkpoints save and restore it with the parameters.</summary>
    public Tensor Counter => _counter;

    /// <summary>The seed of the device streams: the constructor's seed and the pair generator's
    /// stream id (<see cref="Rng.Inc"/>, fixed for the generator's life), so that data-parallel
    /// ranks, whose pair generators differ by stream, draw different anchors from the same counter.</summary>
    ulong StreamSeed => CcrAnchors.Mix(_seed ^ _rng.Inc);

    /// <summary>The generator of the task-pair choice; checkpoints save and restore it so that a
    /// resumed run picks the same pairs as an uninterrupted one.</summary>
    public Rng SamplingRng { get => _rng; set => _rng = value ?? throw new ArgumentNullException(nameof(value)); }

    /// <param name="featureChannels">Channels of each task's final feature map (task order matters: it fixes the pairs' order).</param>
    /// <param name="scalars">Where the lambda of each step lives (the trainer's buffer, uploaded once per
    /// step); null: a buffer of the regulariser's own, uploaded by the epoch overload of Forward.</param>
    public CcrLoss(Device d, Rng rng, CcrConfig config, IReadOnlyList<(string Task, int Channels)> featureChannels, ulong seed = 1234,
                   StepScalars? scalars = null)
    {
        config.Validate();
        Config = config;
        Tasks = featureChannels.Select(f => f.Task).ToArray();
        foreach (var t in Tasks) LabelSpace.For(t); // unknown tasks fail here, not mid-training
        Sampler = new TaskPairSampler(Tasks, config.Pairs);
        _rng = new Rng(seed, 77);
        _seed = CcrAnchors.Mix(seed ^ 0x5CC25CC2UL);
        _counter = Buffer("rng_counter", Tensor.FromArray(d, new int[1], 1));
        if (scalars == null) scalars = _ownScalars = new StepScalars(d, 1);
        _lambda = scalars.Reserve("CCR lambda", 1);
        var channels = featureChannels.ToDictionary(f => f.Task, f => f.Channels);
        foreach (var t in Tasks)
            foreach (var s in Tasks.Where(s => s != t && config.Sharing != ProjectorSharing.None))
            {
                string key = ProjectorKey(t, s);
                if (_projectors.ContainsKey(key))
                {
                    if (_projectors[key].InChannels != channels[t])
                        throw new ArgumentException($"CCR: projector '{key}' is shared by targets with {_projectors[key].InChannels} and {channels[t]} channels; sharing mode {config.Sharing} needs equal channels");
                    continue;
                }
                _projectors[key] = Child($"proj_{key}", new Projector(d, rng, channels[t], config.ProjectionDim, config.HiddenDim));
            }
    }

    /// <summary>Which projector a (target, source) pair uses.</summary>
    public string ProjectorKey(string target, string source) => Config.Sharing switch
    {
        ProjectorSharing.Unshared => $"{target}__{source}",
        ProjectorSharing.SourceShared => target,
        ProjectorSharing.TargetShared => $"src_{source}",
        _ => "all",
    };

    public Projector ProjectorFor(string target, string source) => _projectors[ProjectorKey(target, source)];
    public int ProjectorCount => _projectors.Count;

    /// <summary>
    /// The regulariser for one step, all decided here: draws the pairs, sets lambda(epoch) and
    /// uploads it (a host copy), then as the overload with pairs. features: each task's final
    /// feature map (N, C, H, W); labels: each source task's labels at any resolution (downsampled
    /// by nearest to each map, on the device); epoch: fractional epoch for the lambda ramp.
    /// </summary>
    public (Tensor Loss, CcrDiagnostics Diagnostics) Forward(IReadOnlyDictionary<string, Tensor> features,
                                                             IReadOnlyDictionary<string, TaskLabels> labels, double epoch)
    {
        var pairs = NextPairs(labels.Keys);
        SetLambda(epoch);
        _lambda.Owner.Upload();
        return Forward(features, labels, pairs, epoch);
    }

    /// <summary>The buffer of lambda's slot (the trainer's step scalars, or the regulariser's own).</summary>
    public StepScalars Scalars => _lambda.Owner;

    /// <summary>This step's (target, source) pairs (the paper's contrastive task-pair selection),
    /// among sources with labels; advances the pair generator.</summary>
    public List<(string Target, string Source)> NextPairs(IEnumerable<string> labelled)
    {
        var have = labelled.ToHashSet();
        return Sampler.Next(_rng, have.Contains);
    }

    /// <summary>Writes lambda(<paramref name="epoch"/>) into the step's scalars (host side; the owner
    /// uploads it before the step).</summary>
    public float SetLambda(double epoch) => _lambda[0] = Config.LambdaAt(epoch);

    /// <summary>
    /// The regulariser for one step with host decisions already made: <paramref name="pairs"/> from
    /// <see cref="NextPairs"/>, lambda uploaded after <see cref="SetLambda"/> (<paramref name="epoch"/>
    /// only labels the diagnostics). Launches only: no host copy, no scalar that changes between
    /// steps. Returns the scalar loss (a one-element tensor; 0 without gradient when there is no
    /// pair) and the step's diagnostics.
    /// </summary>
    public (Tensor Loss, CcrDiagnostics Diagnostics) Forward(IReadOnlyDictionary<string, Tensor> features,
                                                             IReadOnlyDictionary<string, TaskLabels> labels,
                                                             IReadOnlyList<(string Target, string Source)> pairs, double epoch)
    {
        var diag = new CcrDiagnostics(Config.LambdaAt(epoch));
        var losses = new List<Tensor>();
        Device? device = null;
        foreach (var (t, s) in pairs)
        {
            if (!features.TryGetValue(t, out var f))
                throw new ArgumentException($"CCR: no feature map for target task '{t}'");
            if (!labels.TryGetValue(s, out var sourceLabels))
                throw new ArgumentException($"CCR: no labels for source task '{s}'");
            device = f.Device;
            var proj = Config.Sharing == ProjectorSharing.None ? Functional.F.L2Normalize(f) : ProjectorFor(t, s).Forward(f);
            var lab = sourceLabels.Resized(proj.Dim(2), proj.Dim(3));
            var anchors = CcrOps.SampleAnchors(lab, Config.AnchorsPerImage(proj.Dim(2), proj.Dim(3)), _counter, StreamSeed);
            var loss = CcrOps.PairLoss(proj, lab, anchors, Config, _counter, (uint)StreamSeed, out var r, Config.CollectSamples);
            CcrAnchors.Advance(device, _counter.IntData); // the next pair (or step) draws a new stream
            diag.Add(t, s, r);
            losses.Add(loss);
        }
        if (losses.Count == 0)
        {
            device ??= features.Values.FirstOrDefault()?.Device
                ?? throw new ArgumentException("CCR: no feature maps given");
            return (Tensor.Zeros(device, 1), diag);
        }
        return (Functional.F.ScaledSum(losses, _lambda.Data), diag);
    }

    public override void DisposeTensors()
    {
        base.DisposeTensors();
        _ownScalars?.Dispose();
    }
}

/// <summary>
/// Per-pair diagnostics of one CCR step: mean positive and negative feature distances, the
/// fraction of anchors that had a valid triplet, the triplet count and the pair's loss. Statistics
/// stay on the device until <see cref="Resolve"/> reads them (call it before the step's
/// TensorScope ends, and only on logging steps: it synchronises). With
/// <see cref="CcrConfig.CollectSamples"/>, <see cref="PairDiagnostics.PosSamples"/> and
/// <see cref="PairDiagnostics.NegSamples"/> hold every mined distance (the paper's Figures 1 and 5).
/// </summary>
public sealed class CcrDiagnostics(float lambda)
{
    public float Lambda { get; } = lambda;
    readonly List<PairDiagnostics> _pairs = new();
    public IReadOnlyList<PairDiagnostics> Pairs => _pairs;

    internal void Add(string target, string source, PairResult r) => _pairs.Add(new PairDiagnostics(target, source, r));

    /// <summary>Reads every pair's statistics to the host (once).</summary>
    public CcrDiagnostics Resolve()
    {
        foreach (var p in _pairs) p.Resolve();
        return this;
    }
}

public sealed class PairDiagnostics
{
    public string Target { get; }
    public string Source { get; }
    readonly PairResult _r;
    float[]? _s;

    internal PairDiagnostics(string target, string source, PairResult r)
    {
        Target = target; Source = source; _r = r;
        if (r.PosIdx != null)
        {
            int[] pos = r.PosIdx, neg = r.NegIdx!;
            int c = neg.Length / pos.Length;
            PosSamples = pos.Select((p, i) => (p, i)).Where(x => x.p >= 0).Select(x => r.PosDist![x.i]).ToArray();
            NegSamples = neg.Select((q, i) => (q, i)).Where(x => x.q >= 0 && pos[x.i / c] >= 0).Select(x => r.NegDist![x.i]).ToArray();
        }
    }

    internal void Resolve()
    {
        if (_s != null) return;
        if (_r.Stats.IsDisposed)
            throw new InvalidOperationException($"CCR diagnostics of {Target}<-{Source} read after the step's tensors were released; call Resolve() inside the step");
        _s = _r.Stats.ToArray();
    }

    float S(CcrTriplet.Stat k) { Resolve(); return _s![(int)k]; }

    public float Loss => S(CcrTriplet.Stat.MeanLoss);
    public int Triplets => (int)S(CcrTriplet.Stat.Triplets);
    /// <summary>Mean D(a, p) over anchors with at least one triplet (0 if none).</summary>
    public float MeanPosDist => S(CcrTriplet.Stat.AnchorsWithTriplet) > 0 ? S(CcrTriplet.Stat.PosDistSum) / S(CcrTriplet.Stat.AnchorsWithTriplet) : 0f;
    /// <summary>Mean D(a, n) over triplets (0 if none).</summary>
    public float MeanNegDist => Triplets > 0 ? S(CcrTriplet.Stat.NegDistSum) / Triplets : 0f;
    /// <summary>Anchors sampled over the batch (valid pixels only: an image with fewer valid pixels than
    /// <see cref="CcrConfig.AnchorsPerImage"/> gives fewer).</summary>
    public int AnchorsSampled => (int)S(CcrTriplet.Stat.AnchorsSampled);
    /// <summary>Anchors with at least one valid triplet / anchors sampled.</summary>
    public float ValidAnchorFraction => S(CcrTriplet.Stat.AnchorsSampled) > 0 ? S(CcrTriplet.Stat.AnchorsWithTriplet) / S(CcrTriplet.Stat.AnchorsSampled) : 0f;
    /// <summary>Triplets with a positive hinge (the ones that pass gradient) / triplets.</summary>
    public float ActiveFraction => Triplets > 0 ? S(CcrTriplet.Stat.ActiveTriplets) / Triplets : 0f;
    public float[]? PosSamples { get; }
    public float[]? NegSamples { get; }
}
