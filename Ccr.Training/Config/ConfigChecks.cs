using Ccr.Kernels.Contrastive;
using System.Globalization;
using Ccr.Training.Data;

namespace Ccr.Training.Config;

/// <summary>
/// The one check of a config, run before anything is created (run folder, data, device): the
/// reading problems (unknown keys, values of the wrong type, unknown choices; <see cref="ConfigSchema"/>)
/// and every out-of-range number or inconsistent combination of the typed record, each with its
/// config key, all of them in one error on one line. Files the config names are checked by the command
/// that uses them, also before anything is created. A new config key adds its check to
/// <see cref="Problems"/> beside its neighbours.
/// </summary>
public static class ConfigChecks
{
    /// <summary>The largest SynthRooms side: 16384^2 x 3 floats stay under .NET's array limit.</summary>
    public const int MaxSide = 16384;

    /// <summary>The size of the training batches' images: the crop when augmenting, else the
    /// SynthRooms image size; null when only the data set knows (real data without augmentation).</summary>
    static (int H, int W)? TrainingSize(TrainConfig c) =>
        c.Data.Augment ? (c.Data.CropHeight, c.Data.CropWidth)
        : c.Data.Dataset == DatasetKind.Synth ? (c.Data.Height, c.Data.Width) : null;

    /// <summary>Throws a <see cref="ConfigException"/> listing <paramref name="readProblems"/> (found while
    /// typing the YAML) and every problem of <paramref name="c"/>, after "<paramref name="source"/>: ".</summary>
    public static void Validate(TrainConfig c, string source, IEnumerable<string>? readProblems = null)
    {
        var p = (readProblems ?? []).Concat(Problems(c)).ToList();
        if (p.Count > 0) throw new ConfigException($"{source}: " + string.Join("; ", p));
    }

    /// <summary>"key = value: what is wrong" for each problem, in the order of the config's sections.</summary>
    public static List<string> Problems(TrainConfig c)
    {
        var p = new List<string>();
        void Need(bool ok, string key, object? value, string rule)
        {
            if (!ok) p.Add($"{key} = {Show(value)}: {rule}");
        }
        static bool Finite(float v) => float.IsFinite(v);

        Need(!string.IsNullOrWhiteSpace(c.Name) && c.Name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0 && c.Name is not ("." or ".."),
             "name", c.Name, "must be a plain folder name");
        Need(c.Seed >= 0, "seed", c.Seed, "must be >= 0");

        // data
        var d = c.Data;
        Need(!string.IsNullOrWhiteSpace(d.Path), "data.path", d.Path, "must name a folder");
        // files named by the config (data.path, model.pretrained, eval.baseline) are checked where they are
        // used, before anything is created: a checkpoint's saved config must load on a machine without them
        if (d.Dataset == DatasetKind.Synth)
        {
            Need(d.TrainSize >= 1, "data.train_size", d.TrainSize, "must be >= 1");
            Need(d.ValSize >= 1, "data.val_size", d.ValSize, "must be >= 1");
            Need(d.Height >= 32, "data.height", d.Height, "must be >= 32 (the backbone's stride)");
            Need(d.Width >= 32, "data.width", d.Width, "must be >= 32 (the backbone's stride)");
        }
        // one SynthRooms image's buffers (3 x H x W floats and its label maps) must fit .NET arrays
        Need(d.Dataset != DatasetKind.Synth || d.Height <= MaxSide, "data.height", d.Height, $"must be <= {MaxSide} (one image's buffers must fit in memory)");
        Need(d.Dataset != DatasetKind.Synth || d.Width <= MaxSide, "data.width", d.Width, $"must be <= {MaxSide} (one image's buffers must fit in memory)");
        Need(d.CropHeight >= 32, "data.crop_height", d.CropHeight, "must be >= 32 (the backbone's stride)");
        Need(d.CropWidth >= 32, "data.crop_width", d.CropWidth, "must be >= 32 (the backbone's stride)");
        Need(d.Workers >= 0, "data.workers", d.Workers, "must be >= 0");
        Need(!string.IsNullOrWhiteSpace(d.TrainSplit), "data.train_split", d.TrainSplit, "must name a split");
        Need(!string.IsNullOrWhiteSpace(d.ValSplit), "data.val_split", d.ValSplit, "must name a split");

        // tasks and their loss weights
        Need(c.Tasks.Count >= 1, "tasks", c.Tasks, "must list at least one task");
        foreach (var t in c.Tasks) Need(TaskNames.All.Contains(t), "tasks", c.Tasks, $"unknown task '{t}' (known: {string.Join(", ", TaskNames.All)})");
        Need(c.Tasks.Distinct().Count() == c.Tasks.Count, "tasks", c.Tasks, "lists a task twice");
        var info = DatasetInfo.Of(d.Dataset);
        foreach (var t in c.Tasks.Where(TaskNames.All.Contains))
            Need(info.AvailableTasks.Contains(t), "tasks", c.Tasks, $"dataset {d.Dataset.ConfigWord()} has no '{t}' labels (has: {string.Join(", ", info.AvailableTasks)})");
        foreach (var (t, w) in c.LossWeights)
        {
            Need(TaskNames.All.Contains(t), "loss_weights." + t, w, $"unknown task (known: {string.Join(", ", TaskNames.All)})");
            Need(Finite(w) && w >= 0, "loss_weights." + t, w, "must be a finite number >= 0");
        }

        // model
        var m = c.Model;
        // model.backbone, model.head and every other choice are enums: ConfigSchema refused unknown words
        Need(m.FpnChannels >= 1, "model.fpn_channels", m.FpnChannels, "must be >= 1");
        Need(m.HeadChannels >= 1, "model.head_channels", m.HeadChannels, "must be >= 1");
        // model.pretrained (timm, none or a file) is resolved by MultiTask.PretrainedWeights before training starts

        // optimisation
        var o = c.Train;
        Need(o.Epochs >= 1, "train.epochs", o.Epochs, "must be >= 1");
        Need(o.MaxSteps >= 0, "train.max_steps", o.MaxSteps, "must be >= 0 (0: no limit)");
        Need(o.BatchSize >= 1, "train.batch_size", o.BatchSize, "must be >= 1");
        if (o.BatchSize >= 1 && TrainingSize(c) is var (th, tw) && th >= 32 && tw >= 32)
        {
            // batch norm in training needs more than one value per channel; the backbone's deepest
            // branch (stride 32) sees batch_size x ceil(H/32) x ceil(W/32) of them
            long values = (long)o.BatchSize * ((th + 31) / 32) * ((tw + 31) / 32);
            Need(values > 1, "train.batch_size", o.BatchSize,
                 $"with {th}x{tw} training images batch norm would see one value per channel at the backbone's stride 32 " +
                 "(batch_size x ceil(H/32) x ceil(W/32) must be > 1): use train.batch_size >= 2, or crops of more than 32 pixels on a side");
        }
        Need(Finite(o.Lr) && o.Lr > 0, "train.lr", o.Lr, "must be a finite number > 0");
        Need(Finite(o.WeightDecay) && o.WeightDecay >= 0, "train.weight_decay", o.WeightDecay, "must be a finite number >= 0");
        Need(Finite(o.Momentum) && o.Momentum >= 0 && o.Momentum < 1, "train.momentum", o.Momentum, "must be in [0, 1)");
        Need(Finite(o.WarmupEpochs) && o.WarmupEpochs >= 0, "train.warmup_epochs", o.WarmupEpochs, "must be a finite number >= 0");
        Need(o.LogEvery >= 1, "train.log_every", o.LogEvery, "must be >= 1");
        Need(o.EvalEvery >= 0, "train.eval_every", o.EvalEvery, "must be >= 0 (0: only at the end)");
        Need(o.CheckpointEvery >= 0, "train.checkpoint_every", o.CheckpointEvery, "must be >= 0 (0: only at the end)");

        // the regulariser (checked even when disabled: ablations switch it on with --set ccr.enabled=true)
        var r = c.Ccr;
        Need(Finite(r.Margin) && r.Margin >= 0, "ccr.margin", r.Margin, "must be a finite number >= 0");
        Need(r.Gamma > 0 && r.Gamma <= 1, "ccr.gamma", r.Gamma, "must be in (0, 1] (the share of pixels used as anchors)");
        Need(r.MinAnchors >= 0, "ccr.min_anchors", r.MinAnchors, "must be >= 0 (0: gamma alone)");
        Need(r.TopK >= 1, "ccr.top_k", r.TopK, "must be >= 1");
        Need(r.NumNegatives >= 1 && r.NumNegatives <= CcrSelect.MaxNegatives, "ccr.negatives", r.NumNegatives,
             $"must be in [1, {(CcrSelect.MaxNegatives)}]");
        Need(Finite(r.Lambda) && r.Lambda >= 0, "ccr.lambda", r.Lambda, "must be a finite number >= 0");
        Need(Finite(r.RampEpochs) && r.RampEpochs >= 0, "ccr.ramp_epochs", r.RampEpochs, "must be a finite number >= 0");
        Need(r.ProjectionDim >= 1, "ccr.proj_dim", r.ProjectionDim, "must be >= 1");

        // evaluation
        var e = c.Eval;
        Need(e.BatchSize >= 1, "eval.batch_size", e.BatchSize, "must be >= 1");
        if (!string.IsNullOrEmpty(e.Metric) && c.Tasks.All(TaskNames.All.Contains))
        {
            var problem = EvalMetrics.Problem(e.Metric, c.Tasks);
            if (problem != null) p.Add($"eval.metric = {e.Metric}: {problem}");
        }
        return p;
    }

    static string Show(object? v) => v switch
    {
        null => "(none)",
        string s => s.Length == 0 ? "''" : s,
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object>()) + "]",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>The metrics eval.json holds per task, and which way each improves: what picks best.ckpt.</summary>
public static class EvalMetrics
{
    /// <summary>Metric name -&gt; lower is better, per task.</summary>
    static readonly Dictionary<string, Dictionary<string, bool>> Known = new()
    {
        [TaskNames.Semseg] = new() { ["mIoU"] = false, ["pixAcc"] = false },
        [TaskNames.HumanParts] = new() { ["mIoU"] = false, ["pixAcc"] = false },
        [TaskNames.Depth] = new() { ["rmse"] = true, ["log_rmse"] = true, ["abs_rel"] = true, ["delta1"] = false, ["delta2"] = false, ["delta3"] = false },
        [TaskNames.Normals] = new() { ["mean"] = true, ["median"] = true, ["rmse"] = true, ["11.25"] = false, ["22.5"] = false, ["30"] = false },
        [TaskNames.Edge] = new() { ["odsF"] = false, ["odsP"] = false, ["odsR"] = false },
        [TaskNames.Saliency] = new() { ["maxF"] = false },
    };

    /// <summary>The default: the first trained task's main metric, as task.metric.</summary>
    public static string Default(IReadOnlyList<string> tasks) => $"{tasks[0]}.{TaskInfo.MainMetric(tasks[0])}";

    /// <summary>Null when <paramref name="key"/> (task.metric) names a metric of a trained task, else why not.</summary>
    public static string? Problem(string key, IReadOnlyList<string> tasks)
    {
        var parts = key.Split('.', 2);
        if (parts.Length != 2) return $"must be task.metric, e.g. {Default(tasks)}";
        if (!tasks.Contains(parts[0]))
            return $"task '{parts[0]}' is not trained by this run (tasks: {string.Join(", ", tasks)}); e.g. {Default(tasks)}";
        var metrics = Known[parts[0]];
        return metrics.ContainsKey(parts[1]) ? null
            : $"{parts[0]} has no metric '{parts[1]}' (has: {string.Join(", ", metrics.Keys)})";
    }

    /// <summary>True when a smaller value of task.metric is better (depth errors, normal angles).</summary>
    public static bool LowerIsBetter(string key)
    {
        var parts = key.Split('.', 2);
        return Known[parts[0]][parts[1]];
    }
}
