using Ccr.Kernels.Contrastive;
using Ccr.Kernels;

namespace Ccr.Nn.Contrastive;

/// <summary>
/// How a task's labels define positives and negatives. "semseg" and "human_parts": discrete
/// classes, 255 ignored. "sal" and "edge": discrete after binarising at 0.5 (values in [0, 1]),
/// 255 ignored. "depth": continuous, L1 distance, 0 (missing) ignored. "normals": continuous, the
/// angle between vectors (3 channels), zero vectors ignored. Non-finite values are always ignored.
/// </summary>
public sealed record LabelSpace(string Task, CcrLabelMetric Metric, int Channels, bool Binarise)
{
    public const float IgnoreIndex = CcrLabels.IgnoreIndex;

    public static LabelSpace For(string task) => task switch
    {
        "semseg" or "human_parts" => new(task, CcrLabelMetric.Discrete, 1, false),
        "sal" or "edge" => new(task, CcrLabelMetric.Discrete, 1, true),
        "depth" => new(task, CcrLabelMetric.L1, 1, false),
        "normals" => new(task, CcrLabelMetric.Angle, 3, false),
        _ => throw new ArgumentException($"CCR: no label space for task '{task}' (known: semseg, human_parts, sal, edge, depth, normals)"),
    };

    public bool IsDiscrete => Metric == CcrLabelMetric.Discrete;
    // Which pixels are valid is decided on the device: CcrLabels.IsValid.
}

/// <summary>
/// One task's labels for CCR, on the device. Holds the source labels as the batch has them — float
/// (N, L, H, W), or int32 class ids (N, H, W) for discrete tasks — and prepares, by one kernel
/// (<see cref="CcrLabels.Prepare(Device, Buf{float}, Buf{int}, Buf{float}, int, int, int, int, int, int, CcrLabelMetric, bool)"/>),
/// the values (N, L, h*w) and validity (N, h*w) at any resolution: nearest downsampling by
/// PyTorch's rule, validity, binarising. Nothing travels from the host once the batch is uploaded.
/// <see cref="Resized"/> caches one prepared copy per resolution. Owns the prepared tensors (and the
/// source when it made it): dispose it (the trainer does so at the end of each step).
/// </summary>
public sealed class TaskLabels : IDisposable
{
    public LabelSpace Space { get; }
    public int N { get; }
    /// <summary>Resolution of <see cref="DeviceValues"/> / <see cref="DeviceValid"/>.</summary>
    public int H { get; }
    public int W { get; }

    readonly Tensor _source;
    readonly int _srcH, _srcW;
    readonly bool _ownsSource;
    readonly TaskLabels? _root;
    Tensor? _values, _valid;
    readonly Dictionary<(int, int), TaskLabels> _resized = new();

    TaskLabels(LabelSpace space, Tensor source, int n, int srcH, int srcW, int h, int w, bool ownsSource, TaskLabels? root)
    {
        Space = space; _source = source; N = n; _srcH = srcH; _srcW = srcW; H = h; W = w;
        _ownsSource = ownsSource; _root = root;
    }

    /// <summary>Labels (N, L, H, W) of <paramref name="task"/> from host floats (class ids for
    /// discrete tasks), uploaded once (tests, benchmarks).</summary>
    public static TaskLabels Create(Device d, string task, float[] values, int n, int h, int w)
    {
        var space = LabelSpace.For(task);
        if (n < 1 || h < 1 || w < 1 || values.Length != (long)n * space.Channels * h * w)
            throw new ArgumentException($"TaskLabels({task}): {values.Length} values for (N={n}, L={space.Channels}, H={h}, W={w})");
        var t = Tensor.FromArray(d, values, n, space.Channels, h, w);
        TensorScope.Forget(t);
        return new TaskLabels(space, t, n, h, w, h, w, ownsSource: true, root: null);
    }

    /// <summary>Integer class labels (N, H, W) of a discrete task, uploaded once.</summary>
    public static TaskLabels Create(Device d, string task, int[] classes, int n, int h, int w) =>
        Create(d, task, Array.ConvertAll(classes, v => (float)v), n, h, w);

    /// <summary>Labels already on the device: float (N, L, H, W), or int32 (N, H, W) class ids of a
    /// discrete task (the batch's own label tensors; not copied, not owned).</summary>
    public static TaskLabels FromDevice(string task, Tensor labels)
    {
        var space = LabelSpace.For(task);
        bool ints = labels.DType == DType.I32;
        if (ints ? labels.Rank != 3 || !space.IsDiscrete : labels.Rank != 4 || labels.Dim(1) != space.Channels)
            throw new ArgumentException($"TaskLabels({task}): labels {labels.Describe()} {labels.DType}; expected " +
                (space.IsDiscrete ? "int32 (N, H, W) or " : "") + $"float (N, {space.Channels}, H, W)");
        int h = labels.Dim(-2), w = labels.Dim(-1);
        return new TaskLabels(space, labels, labels.Dim(0), h, w, h, w, ownsSource: false, root: null);
    }

    /// <summary>Prepared values on the device (N, L, H*W).</summary>
    public Tensor DeviceValues { get { Prepare(); return _values!; } }
    /// <summary>Validity on the device (N, H*W), int32 1 or 0.</summary>
    public Tensor DeviceValid { get { Prepare(); return _valid!; } }

    /// <summary>Host copy of <see cref="DeviceValues"/> (synchronises: tests and diagnostics only).</summary>
    public float[] Values => DeviceValues.ToArray();
    /// <summary>Host copy of <see cref="DeviceValid"/> (synchronises: tests and diagnostics only).</summary>
    public int[] Valid => DeviceValid.ToIntArray();

    void Prepare()
    {
        if (_values != null) return;
        var d = _source.Device;
        int l = Space.Channels;
        var values = Own(Tensor.Empty(d, N, l, H * W));
        var valid = Own(Tensor.Empty(d, DType.I32, N, H * W));
        if (_source.DType == DType.I32)
            CcrLabels.Prepare(d, values.Data, valid.IntData, _source.IntData, N, _srcH, _srcW, H, W, Space.Metric, Space.Binarise);
        else
            CcrLabels.Prepare(d, values.Data, valid.IntData, _source.Data, N, l, _srcH, _srcW, H, W, Space.Metric, Space.Binarise);
        _values = values; _valid = valid;
    }

    static Tensor Own(Tensor t) { TensorScope.Forget(t); return t; }

    /// <summary>The labels at h x w, prepared from the source by nearest (PyTorch's rule), cached.</summary>
    public TaskLabels Resized(int h, int w)
    {
        if (h == H && w == W) return this;
        var root = _root ?? this;
        if (root.H == h && root.W == w) return root;
        if (root._resized.TryGetValue((h, w), out var r)) return r;
        r = new TaskLabels(Space, _source, N, _srcH, _srcW, h, w, ownsSource: false, root);
        root._resized[(h, w)] = r;
        return r;
    }

    public void Dispose()
    {
        _values?.Dispose(); _valid?.Dispose();
        _values = null; _valid = null;
        foreach (var r in _resized.Values) r.Dispose();
        _resized.Clear();
        if (_ownsSource) _source.Dispose();
    }
}
