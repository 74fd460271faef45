namespace Ccr.Training.Data;

/// <summary>The task names used everywhere: config files, prediction folders, eval.json keys.</summary>
public static class TaskNames
{
    public const string Semseg = "semseg";
    public const string Depth = "depth";
    public const string Normals = "normals";
    public const string Edge = "edge";
    public const string Saliency = "sal";
    public const string HumanParts = "human_parts";

    public static readonly IReadOnlyList<string> All =
        [Semseg, Depth, Normals, Edge, Saliency, HumanParts];

    public static string Validate(string task) =>
        All.Contains(task) ? task : throw new ArgumentException(
            $"unknown task '{task}' (known: {string.Join(", ", All)})");
}

/// <summary>
/// Per-task facts of the reference protocol (docs/guide/PROTOCOLS.md): the metric that Δm uses and whether
/// lower is better for it (the loss weights are config: TrainConfig.LossWeights).
/// </summary>
public static class TaskInfo
{
    /// <summary>The metric key of each task that Δm compares (a key of the task's eval.json block).</summary>
    public static string MainMetric(string task) => task switch
    {
        TaskNames.Semseg or TaskNames.HumanParts => "mIoU",
        TaskNames.Depth => "rmse",
        TaskNames.Normals => "mean",
        TaskNames.Edge => "odsF",
        TaskNames.Saliency => "maxF",  // ATRC / InvPT, beta² = 0.3 (SaliencyMetric)
        _ => throw new ArgumentException($"unknown task '{task}'"),
    };

    /// <summary>The main metric under Multi-Task-Learning-PyTorch's Δm: the same, except saliency,
    /// compared by its eval_sal mIoU ("mIoU_mtl").</summary>
    public static string MainMetricMtl(string task) =>
        task == TaskNames.Saliency ? "mIoU_mtl" : MainMetric(task);

    /// <summary>l_i of Δm: true for depth RMSE and the normals' mean angle.</summary>
    public static bool LowerIsBetter(string task) =>
        task is TaskNames.Depth or TaskNames.Normals;

    /// <summary>True for tasks whose label is a class index (cross-entropy, mIoU).</summary>
    public static bool IsClassification(string task) =>
        task is TaskNames.Semseg or TaskNames.HumanParts;
}

/// <summary>
/// Facts of one dataset: class counts, the edge loss's positive weight, the edge matching radius.
/// </summary>
public sealed record DatasetInfo(
    string Name,
    int SemsegClasses,
    int PartsClasses,
    double EdgePosWeight,
    double EdgeMaxDist,
    IReadOnlyList<string> AvailableTasks)
{
    /// <summary>NYUD-v2: 40 classes, edge w = 0.8, matching radius 0.011 of the diagonal.</summary>
    public static readonly DatasetInfo Nyud = new("nyud", 40, 0, 0.8, 0.011,
        [TaskNames.Semseg, TaskNames.Depth, TaskNames.Normals, TaskNames.Edge]);

    /// <summary>PASCAL-Context: 21 classes, 7 parts, edge w = 0.95, radius 0.0075.</summary>
    public static readonly DatasetInfo Pascal = new("pascal", 21, 7, 0.95, 0.0075,
        [TaskNames.Semseg, TaskNames.HumanParts, TaskNames.Saliency, TaskNames.Normals, TaskNames.Edge]);

    /// <summary>
    /// SynthRooms: 10 classes (see <see cref="SynthClasses"/>), 5 parts (0 background, 1 head,
    /// 2 torso, 3 arms, 4 legs), NYUD's edge weight and radius (it is stored in the NYUD layout).
    /// </summary>
    public static readonly DatasetInfo Synth = new("synth", SynthClasses.Count, SynthClasses.PartsCount, 0.8, 0.011,
        [TaskNames.Semseg, TaskNames.Depth, TaskNames.Normals, TaskNames.Edge, TaskNames.Saliency, TaskNames.HumanParts]);

    /// <summary>The labels and class counts of a config's data.dataset.</summary>
    public static DatasetInfo Of(Config.DatasetKind dataset) => dataset switch
    {
        Config.DatasetKind.Nyud => Nyud,
        Config.DatasetKind.Pascal => Pascal,
        Config.DatasetKind.Synth => Synth,
        _ => throw new ArgumentOutOfRangeException(nameof(dataset), dataset, null),
    };

    public static DatasetInfo ByName(string name) => name switch
    {
        "nyud" => Nyud,
        "pascal" => Pascal,
        "synth" => Synth,
        _ => throw new ArgumentException($"unknown dataset '{name}' (known: nyud, pascal, synth)"),
    };

    /// <summary>Class count of a classification task (semseg or human_parts).</summary>
    public int Classes(string task) => task switch
    {
        TaskNames.Semseg => SemsegClasses,
        TaskNames.HumanParts => PartsClasses,
        _ => throw new ArgumentException($"task '{task}' has no classes"),
    };
}

/// <summary>A source of samples; Get must be thread-safe (the loader calls it from worker threads).</summary>
public interface IDataset
{
    string Name { get; }
    DatasetInfo Info { get; }
    int Count { get; }
    IReadOnlyList<string> Tasks { get; }
    string GetId(int index);
    Sample Get(int index);
}

/// <summary>Opens a dataset from a "kind:PATH" spec (nyud:PATH, pascal:PATH, synth:PATH).</summary>
public static class DatasetSpec
{
    public static IDataset Open(string spec, string split, IEnumerable<string>? tasks = null,
        BadSamplePolicy policy = BadSamplePolicy.Stop)
    {
        int colon = spec.IndexOf(':');
        if (colon <= 0 || colon == spec.Length - 1)
            throw new ArgumentException($"dataset spec '{spec}' must be nyud:PATH, pascal:PATH or synth:PATH");
        string kind = spec[..colon], path = spec[(colon + 1)..];
        return kind switch
        {
            "nyud" => new NyudDataset(path, split, tasks, policy),
            "pascal" => new PascalDataset(path, split, tasks, policy),
            "synth" => SynthRooms.Open(path, split, tasks, policy),
            _ => throw new ArgumentException($"unknown dataset kind '{kind}' in '{spec}' (nyud, pascal, synth)"),
        };
    }
}
