using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>
/// A loader batch on the device: the normalised images (N, 3, H, W), each task's labels — int32
/// (N, H, W) for class tasks, float (N, C, H, W) for the others — and, for the contrastive
/// regulariser, views of those same label tensors (<see cref="TaskLabels.FromDevice"/>: it prepares
/// validity and downsampled copies on the device; the labels are uploaded once, with the batch).
/// Made by <see cref="Create"/> inside a step's TensorScope (evaluation, figures), or by
/// <see cref="Staging"/> once per batch shape and refilled before every training step by
/// <see cref="Pack"/> and <see cref="Commit"/> (the batch and the step's scalars as one asynchronous
/// copy from pinned memory, <see cref="StepUpload"/>): fixed device buffers, so that a step captured
/// as a CUDA graph reads each new batch where the previous one was (the upload is outside the graph).
/// </summary>
public sealed class DeviceBatch : IDisposable
{
    public required Tensor Images { get; init; }
    public Batch Host { get; private set; } = null!;
    public Dictionary<string, Tensor> IntLabels { get; } = new();
    public Dictionary<string, Tensor> FloatLabels { get; } = new();
    public Dictionary<string, TaskLabels> CcrLabels { get; } = new();
    /// <summary>Share of negatives among valid saliency pixels: the class weight of positives.</summary>
    public double SaliencyNegativeShare { get; private set; } = 0.5;
    /// <summary>Saliency's class weights [1 - share, share] in device memory (the trainer's step
    /// scalars), or invalid: the loss then uploads them itself.</summary>
    public Buf<float> SaliencyWeights { get; set; }

    readonly Dictionary<string, int> _classes = new();
    bool _persistent;

    /// <summary>Uploads <paramref name="b"/> into new tensors of the current scope; with
    /// <paramref name="forCcr"/>, the regulariser's label views too.</summary>
    public static DeviceBatch Create(Device d, Batch b, IReadOnlyList<string> tasks, DatasetInfo info, bool forCcr)
    {
        var db = Allocate(d, b, tasks, info);
        db.Upload(b);
        if (forCcr) db.MakeCcrLabels();
        return db;
    }

    /// <summary>Device buffers for batches shaped like <paramref name="b"/>, outside any scope (the
    /// trainer's staging buffers; dispose them); nothing is uploaded yet. With
    /// <paramref name="scalars"/>, the batch and those scalars go up together as one copy per step
    /// (<see cref="Pack"/>, then <see cref="Commit"/>).</summary>
    public static DeviceBatch Staging(Device d, Batch b, IReadOnlyList<string> tasks, DatasetInfo info, StepScalars? scalars = null)
    {
        var db = Allocate(d, b, tasks, info);
        db._persistent = true;
        foreach (var t in db.All()) TensorScope.Forget(t);
        if (scalars != null)
        {
            // destinations in All()'s order, then the scalars
            var targets = db.All().Select(t => t.DType == DType.I32 ? StepUpload.Bytes(t.IntData) : StepUpload.Bytes(t.Data)).ToList();
            db._scalarsTarget = targets.Count;
            targets.Add(StepUpload.Bytes(scalars.DeviceData));
            db._upload = new StepUpload(d, targets);
            db._scalars = scalars;
        }
        return db;
    }

    StepUpload? _upload;
    StepScalars? _scalars;
    int _scalarsTarget; // the scalars' destination index in _upload (after every tensor of All())

    static DeviceBatch Allocate(Device d, Batch b, IReadOnlyList<string> tasks, DatasetInfo info)
    {
        int n = b.N, h = b.Height, w = b.Width;
        var db = new DeviceBatch { Images = Tensor.Empty(d, n, 3, h, w) };
        db.Images.Name = "images";
        foreach (var task in tasks)
        {
            if (IsClassTask(task))
            {
                db._classes[task] = task == TaskNames.Saliency ? 2 : info.Classes(task);
                var t = Tensor.Empty(d, DType.I32, n, h, w);
                t.Name = task + " labels";
                db.IntLabels[task] = t;
            }
            else
            {
                var t = Tensor.Empty(d, n, task == TaskNames.Normals ? 3 : 1, h, w);
                t.Name = task + " labels";
                db.FloatLabels[task] = t;
            }
        }
        return db;
    }

    static bool IsClassTask(string task) => task is TaskNames.Semseg or TaskNames.HumanParts or TaskNames.Saliency;

    /// <summary>True when <paramref name="b"/> has this batch's shape (it can be uploaded here).</summary>
    public bool Fits(Batch b) => Images.Dim(0) == b.N && Images.Dim(2) == b.Height && Images.Dim(3) == b.Width;

    /// <summary>Copies <paramref name="b"/>'s images and labels into this batch's tensors (host
    /// copies; class labels are checked on the host first, so nothing is uploaded when one is out
    /// of range).</summary>
    public void Upload(Batch b)
    {
        var labels = Check(b);
        Images.Data.CopyFrom(b.Images);
        foreach (var (t, a) in labels)
        {
            if (a is int[] ints) t.IntData.CopyFrom(ints);
            else t.Data.CopyFrom((float[])a);
        }
        Remember(b);
    }

    /// <summary>Writes <paramref name="b"/> into the pinned memory of this staging batch's one
    /// upload (checked first, as <see cref="Upload"/>); nothing reaches the device before
    /// <see cref="Commit"/>.</summary>
    public void Pack(Batch b)
    {
        var u = _upload ?? throw new InvalidOperationException("DeviceBatch.Pack: a staging batch made without step scalars uploads with Upload");
        var labels = Check(b);
        b.Images.AsSpan().CopyTo(u.Host<float>(0));
        var tensors = All().ToList();
        foreach (var (t, a) in labels)
        {
            int i = tensors.IndexOf(t);
            if (a is int[] ints) ints.AsSpan().CopyTo(u.Host<int>(i));
            else ((float[])a).AsSpan().CopyTo(u.Host<float>(i));
        }
        Remember(b);
    }

    /// <summary>Issues the step's one upload: the packed batch and the step scalars' current host
    /// values (written now), asynchronously, into the fixed device buffers.</summary>
    public void Commit()
    {
        var u = _upload ?? throw new InvalidOperationException("DeviceBatch.Commit: a staging batch made without step scalars uploads with Upload");
        _scalars!.WriteHost(u.Host<float>(_scalarsTarget));
        u.Commit();
    }

    /// <summary>The batch's labels matched with this batch's tensors, class labels range-checked.</summary>
    List<(Tensor, Array)> Check(Batch b)
    {
        if (!Fits(b))
            throw new ArgumentException($"batch of {b.N} x {b.Height}x{b.Width} uploaded into buffers of {Tensor.ShapeString(Images.Shape)}");
        var labels = new List<(Tensor, Array)>();
        foreach (var (task, t) in IntLabels)
        {
            var lab = (task == TaskNames.Semseg ? b.Semseg : task == TaskNames.HumanParts ? b.Parts : b.Saliency) ?? throw Missing(task);
            Tensor.CheckLabels(lab, _classes[task], t.Shape, 255, t.Name ?? task);
            labels.Add((t, lab));
        }
        foreach (var (task, t) in FloatLabels)
            labels.Add((t, (task == TaskNames.Depth ? b.Depth : task == TaskNames.Normals ? b.Normals : b.Edge) ?? throw Missing(task)));
        foreach (var (t, a) in labels)
            if (a.Length != t.Numel)
                throw new ArgumentException($"{t.Name}: {a.Length} values for a tensor of {Tensor.ShapeString(t.Shape)}");
        if (b.Images.Length != Images.Numel)
            throw new ArgumentException($"images: {b.Images.Length} values for a tensor of {Tensor.ShapeString(Images.Shape)}");
        return labels;
    }

    void Remember(Batch b)
    {
        if (b.Saliency is { } sal && IntLabels.ContainsKey(TaskNames.Saliency))
        {
            long neg = 0, valid = 0;
            foreach (var v in sal) { if (v == 255) continue; valid++; if (v == 0) neg++; }
            SaliencyNegativeShare = valid > 0 ? (double)neg / valid : 0.5;
        }
        Host = b;
    }

    /// <summary>The regulariser's views of every task's labels (host objects; their prepared device
    /// tensors are made on first use and freed by <see cref="DisposeCcrLabels"/>).</summary>
    public void MakeCcrLabels()
    {
        foreach (var (task, t) in IntLabels) CcrLabels[task] = TaskLabels.FromDevice(task, t);
        foreach (var (task, t) in FloatLabels) CcrLabels[task] = TaskLabels.FromDevice(task, t);
    }

    /// <summary>Disposes the regulariser's prepared labels (the batch's tensors go with the scope).</summary>
    public void DisposeCcrLabels()
    {
        foreach (var l in CcrLabels.Values) l.Dispose();
        CcrLabels.Clear();
    }

    IEnumerable<Tensor> All() => [Images, .. IntLabels.Values, .. FloatLabels.Values];

    /// <summary>Frees the tensors of a <see cref="Staging"/> batch (a scope frees those of <see cref="Create"/>).</summary>
    public void Dispose()
    {
        DisposeCcrLabels();
        _upload?.Dispose();
        if (_persistent) foreach (var t in All()) t.Dispose();
    }

    static Exception Missing(string task) =>
        new InvalidOperationException($"the batch has no '{task}' labels, but the run trains that task");
}
