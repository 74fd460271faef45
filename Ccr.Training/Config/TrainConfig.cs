using Ccr.Kernels;
using Ccr.Nn.Contrastive;

namespace Ccr.Training.Config;

/// <summary>
/// Everything a run depends on, as written in the YAML configs (snake_case keys) and saved resolved
/// in the run folder. Defaults are the paper's settings where it gives them. Immutable records: the
/// loader (<see cref="ConfigLoader"/>) builds one from the YAML node tree, checks it once
/// (<see cref="ConfigChecks"/>), and everything downstream reads typed values; a variant is a
/// <c>with</c> copy. Every choice is an enum whose YAML spelling lives in <see cref="ConfigEnums"/>.
/// </summary>
public sealed record TrainConfig
{
    public string Name { get; init; } = "run";
    /// <summary>Seeds the training: initialisation, data order, augmentation, CCR's pairs and anchors
    /// (and the generated data set too, unless data.seed is given).</summary>
    public int Seed { get; init; } = 0;
    /// <summary>auto | cuda | cpu.</summary>
    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;
    public DataConfig Data { get; init; } = new();
    /// <summary>Tasks trained together; one task gives a single-task model.</summary>
    public IReadOnlyList<string> Tasks { get; init; } = ["semseg", "depth", "normals"];
    public ModelConfig Model { get; init; } = new();
    public OptimConfig Train { get; init; } = new();
    /// <summary>Per-task loss weights (docs/guide/PROTOCOLS.md). A config or --set that gives some of them
    /// keeps these defaults for the others.</summary>
    public IReadOnlyDictionary<string, float> LossWeights { get; init; } = new Dictionary<string, float>
    {
        ["semseg"] = 1f, ["human_parts"] = 2f, ["depth"] = 1f, ["normals"] = 10f, ["edge"] = 50f, ["sal"] = 5f,
    };
    /// <summary>The <c>ccr:</c> section, read straight into the regulariser's own settings.</summary>
    public CcrConfig Ccr { get; init; } = new();
    public EvalConfig Eval { get; init; } = new();
    /// <summary>[distributed] Data-parallel settings, used under mpirun.</summary>
    public DistributedConfig Distributed { get; init; } = new();

    // Tasks and LossWeights are collections, which a record compares by reference: equality is
    // spelled out so that a config that round-trips through YAML equals the one written.
    public bool Equals(TrainConfig? o) =>
        o is not null && Name == o.Name && Seed == o.Seed && Device == o.Device && Data == o.Data
        && Tasks.SequenceEqual(o.Tasks) && Model == o.Model && Train == o.Train
        && LossWeights.Count == o.LossWeights.Count
        && LossWeights.All(kv => o.LossWeights.TryGetValue(kv.Key, out float w) && w.Equals(kv.Value))
        && Ccr == o.Ccr && Eval == o.Eval && Distributed == o.Distributed;

    public override int GetHashCode() => HashCode.Combine(Name, Seed, Device, Data, Tasks.Count, Model, Train, Ccr);
}

public sealed record DataConfig
{
    /// <summary>synth | nyud | pascal.</summary>
    public DatasetKind Dataset { get; init; } = DatasetKind.Synth;
    /// <summary>Dataset root; for synth, the cache folder of the generated set.</summary>
    public string Path { get; init; } = "data/synthrooms";
    /// <summary>SynthRooms only: the seed of the generated data set; unset, the run's seed (configs
    /// written before this key). Set it to vary the training seed over one fixed data set.</summary>
    public int? Seed { get; init; }
    /// <summary>SynthRooms only: images generated for train, val and test (0: no test split), and
    /// their size. The test split's scenes are never used by train or val.</summary>
    public int TrainSize { get; init; } = 2000;
    public int ValSize { get; init; } = 300;
    public int TestSize { get; init; } = 0;
    public int Height { get; init; } = 96;
    public int Width { get; init; } = 128;
    /// <summary>Training crop (height, width); evaluation runs at full resolution.</summary>
    public int CropHeight { get; init; } = 96;
    public int CropWidth { get; init; } = 128;
    public bool Augment { get; init; } = true;
    public int Workers { get; init; } = 2;
    public string TrainSplit { get; init; } = "train";
    public string ValSplit { get; init; } = "val";
    /// <summary>Skip unreadable samples (counting them) instead of stopping.</summary>
    public bool SkipBad { get; init; } = false;
}

public sealed record ModelConfig
{
    /// <summary>hrnet_w18_small_v2 | hrnet_tiny (the CPU backbone).</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.HrnetW18SmallV2;
    /// <summary>fpn (SemanticFPN per task, the paper's baseline) | hrnet (MTI-Net's head).</summary>
    public HeadKind Head { get; init; } = HeadKind.Fpn;
    /// <summary>Width of the FPN neck (head: fpn); Semantic FPN as published (Kirillov et al. 2019,
    /// mmsegmentation's config) uses 256.</summary>
    public int FpnChannels { get; init; } = 256;
    /// <summary>Width of each task's Semantic FPN decoder (its feature map, where CCR acts); 128 as published.</summary>
    public int HeadChannels { get; init; } = 128;
    /// <summary>Backbone weights: timm (timm's file in the Hugging Face cache), a safetensors path
    /// (timm names), or none / empty for training from scratch (Models/PretrainedWeights.cs).</summary>
    public string Pretrained { get; init; } = "";
}

public sealed record OptimConfig
{
    public int Epochs { get; init; } = 100;
    /// <summary>Stop after this many steps (0: no limit).</summary>
    public int MaxSteps { get; init; } = 0;
    public int BatchSize { get; init; } = 4;
    /// <summary>adam | adamw | sgd.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    public float Lr { get; init; } = 2e-4f;
    public float WeightDecay { get; init; } = 1e-4f;
    public float Momentum { get; init; } = 0.9f;
    public float WarmupEpochs { get; init; } = 1f;
    /// <summary>poly | constant.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Poly;
    public int LogEvery { get; init; } = 10;
    /// <summary>Evaluate every this many epochs (0: only at the end).</summary>
    public int EvalEvery { get; init; } = 1;
    public int CheckpointEvery { get; init; } = 1;
    /// <summary>fp32 | tf32: arithmetic of the GPU's convolutions and GEMMs (tf32: tensor cores, 10-bit
    /// mantissa operands, fp32 sums). The CPU always computes in fp32.</summary>
    public MathPrecision Precision { get; init; } = MathPrecision.Fp32;
    /// <summary>On a CUDA device, capture the steady-state training step as a CUDA graph and replay
    /// it (fewer launches, same results); false: plain launches. Ignored on the CPU and under mpirun.</summary>
    public bool CudaGraph { get; init; } = true;
    /// <summary>TensorBoard event files in the run folder beside metrics.csv (Reporting/TensorBoardLog.cs).</summary>
    public bool Tensorboard { get; init; } = true;
}

public sealed record EvalConfig
{
    /// <summary>Metric that picks best.ckpt when no baseline is given, as task.metric of a trained
    /// task; empty: the first task's main metric (resolved when the config is loaded).</summary>
    public string Metric { get; init; } = "";
    /// <summary>Single-task baseline eval.json for delta_m (and best.ckpt by delta_m).</summary>
    public string Baseline { get; init; } = "";
    public int BatchSize { get; init; } = 4;
    public bool SavePredictions { get; init; } = false;
}
