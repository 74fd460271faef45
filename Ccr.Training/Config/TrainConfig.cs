namespace Ccr.Training.Config;

/// <summary>
/// Everything a run depends on, as written in the YAML configs (snake_case keys) and saved resolved
/// in the run folder. Defaults are the paper's settings where it gives them.
/// </summary>
public sealed class TrainConfig
{
    public string Name { get; set; } = "run";
    /// <summary>Seeds the training: initialisation, data order, augmentation, CCR's pairs and anchors
    /// (and the generated data set too, unless data.seed is given).</summary>
    public int Seed { get; set; } = 0;
    /// <summary>auto | cuda | cpu.</summary>
    public string Device { get; set; } = "auto";
    public DataConfig Data { get; set; } = new();
    /// <summary>Tasks trained together; one task gives a single-task model.</summary>
    public List<string> Tasks { get; set; } = new() { "semseg", "depth", "normals" };
    public ModelConfig Model { get; set; } = new();
    public OptimConfig Train { get; set; } = new();
    /// <summary>Per-task loss weights (docs/PROTOCOLS.md). A config or --set that gives some of them
    /// keeps these defaults for the others.</summary>
    public Dictionary<string, float> LossWeights { get; set; } = new()
    {
        ["semseg"] = 1f, ["human_parts"] = 2f, ["depth"] = 1f, ["normals"] = 10f, ["edge"] = 50f, ["sal"] = 5f,
    };
    public CcrSettings Ccr { get; set; } = new();
    public EvalConfig Eval { get; set; } = new();
    /// <summary>[distributed] Data-parallel settings, used under mpirun.</summary>
    public DistributedConfig Distributed { get; set; } = new();
}

public sealed class DataConfig
{
    /// <summary>synth | nyud | pascal.</summary>
    public string Dataset { get; set; } = "synth";
    /// <summary>Dataset root; for synth, the cache folder of the generated set.</summary>
    public string Path { get; set; } = "data/synthrooms";
    /// <summary>SynthRooms only: the seed of the generated data set; unset, the run's seed (configs
    /// written before this key). Set it to vary the training seed over one fixed data set.</summary>
    public int? Seed { get; set; }
    /// <summary>SynthRooms only: images generated for train, val and test (0: no test split), and
    /// their size. The test split's scenes are never used by train or val.</summary>
    public int TrainSize { get; set; } = 2000;
    public int ValSize { get; set; } = 300;
    public int TestSize { get; set; } = 0;
    public int Height { get; set; } = 96;
    public int Width { get; set; } = 128;
    /// <summary>Training crop (height, width); evaluation runs at full resolution.</summary>
    public int CropHeight { get; set; } = 96;
    public int CropWidth { get; set; } = 128;
    public bool Augment { get; set; } = true;
    public int Workers { get; set; } = 2;
    public string TrainSplit { get; set; } = "train";
    public string ValSplit { get; set; } = "val";
    /// <summary>Skip unreadable samples (counting them) instead of stopping.</summary>
    public bool SkipBad { get; set; } = false;
}

public sealed class ModelConfig
{
    /// <summary>hrnet_w18_small_v2 | hrnet_small (the CPU backbone).</summary>
    public string Backbone { get; set; } = "hrnet_w18_small_v2";
    /// <summary>fpn (SemanticFPN per task, the paper's baseline) | hrnet (MTI-Net's head).</summary>
    public string Head { get; set; } = "fpn";
    /// <summary>Width of the FPN neck (head: fpn); Semantic FPN as published (Kirillov et al. 2019,
    /// mmsegmentation's config) uses 256.</summary>
    public int FpnChannels { get; set; } = 256;
    /// <summary>Width of each task's Semantic FPN decoder (its feature map, where CCR acts); 128 as published.</summary>
    public int HeadChannels { get; set; } = 128;
    /// <summary>Backbone weights: timm (timm's file in the Hugging Face cache), a safetensors path
    /// (timm names), or none / empty for training from scratch (Models/PretrainedWeights.cs).</summary>
    public string Pretrained { get; set; } = "";
}

public sealed class OptimConfig
{
    public int Epochs { get; set; } = 100;
    /// <summary>Stop after this many steps (0: no limit).</summary>
    public int MaxSteps { get; set; } = 0;
    public int BatchSize { get; set; } = 4;
    /// <summary>adam | adamw | sgd.</summary>
    public string Optimizer { get; set; } = "adam";
    public float Lr { get; set; } = 2e-4f;
    public float WeightDecay { get; set; } = 1e-4f;
    public float Momentum { get; set; } = 0.9f;
    public float WarmupEpochs { get; set; } = 1f;
    /// <summary>poly | constant.</summary>
    public string Schedule { get; set; } = "poly";
    public int LogEvery { get; set; } = 10;
    /// <summary>Evaluate every this many epochs (0: only at the end).</summary>
    public int EvalEvery { get; set; } = 1;
    public int CheckpointEvery { get; set; } = 1;
    /// <summary>fp32 | tf32: arithmetic of the GPU's convolutions and GEMMs (tf32: tensor cores, 10-bit
    /// mantissa operands, fp32 sums). The CPU always computes in fp32.</summary>
    public string Precision { get; set; } = "fp32";
    /// <summary>On a CUDA device, capture the steady-state training step as a CUDA graph and replay
    /// it (fewer launches, same results); false: plain launches. Ignored on the CPU and under mpirun.</summary>
    public bool CudaGraph { get; set; } = true;
    /// <summary>TensorBoard event files in the run folder beside metrics.csv (Reporting/TensorBoardLog.cs).</summary>
    public bool Tensorboard { get; set; } = true;
}

public sealed class CcrSettings
{
    public bool Enabled { get; set; } = true;
    public float Margin { get; set; } = 0.2f;
    public float Gamma { get; set; } = 0.01f;
    /// <summary>A floor on anchors per image (0: gamma alone, the paper's rule); see CcrConfig.AnchorsPerImage.</summary>
    public int MinAnchors { get; set; } = 0;
    public int TopK { get; set; } = 128;
    public int Negatives { get; set; } = 16;
    public float Lambda { get; set; } = 1f;
    public float RampEpochs { get; set; } = 1f;
    /// <summary>hard (hardest positive + semi-hard negatives) | basic (uniform).</summary>
    public string Sampling { get; set; } = "hard";
    /// <summary>source (shared across source tasks, the paper's best) | unshared | target | both | none (no projector).</summary>
    public string Sharing { get; set; } = "source";
    /// <summary>random (one source task per target each step) | all.</summary>
    public string PairSelection { get; set; } = "random";
    public int ProjDim { get; set; } = 128;
}

public sealed class EvalConfig
{
    /// <summary>Metric that picks best.ckpt when no baseline is given, as task.metric of a trained
    /// task; empty: the first task's main metric (resolved when the config is loaded).</summary>
    public string Metric { get; set; } = "";
    /// <summary>Single-task baseline eval.json for delta_m (and best.ckpt by delta_m).</summary>
    public string Baseline { get; set; } = "";
    public int BatchSize { get; set; } = 4;
    public bool SavePredictions { get; set; } = false;
}
