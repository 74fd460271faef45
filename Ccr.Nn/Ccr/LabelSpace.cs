using Ccr.Kernels;

namespace Ccr.Nn.Ccr;

/// <summary>
/// How a task's labels define positives and negatives. "semseg" and "human_parts": discrete
/// classes, 255 ignored. "sal" and "edge": discrete after binarising at 0.5 (values in [0, 1]),
/// 255 ignored. "depth": continuous, L1 distance, 0 (missing) ignored. "normals": continuous, the
/// angle between vectors (3 channels), zero vectors ignored. Non-finite values are always ignored.
/// </summary>
public sealed record LabelSpace(string Task, CcrLabelMetric Metric, int Channels, bool Binarise)
{
    public const float IgnoreIndex = 255f;

    public static LabelSpace For(string task) => task switch
    {
        "semseg" or "human_parts" => new(task, CcrLabelMetric.Discrete, 1, false),
        "sal" or "edge" => new(task, CcrLabelMetric.Discrete, 1, true),
        "depth" => new(task, CcrLabelMetric.L1, 1, false),
        "normals" => new(task, CcrLabelMetric.Angle, 3, false),
        _ => throw new ArgumentException($"CCR: no label space for task '{task}' (known: semseg, human_parts, sal, edge, depth, normals)"),
    };

    public bool IsDiscrete => Metric == CcrLabelMetric.Discrete;

    /// <summary>Is the pixel whose channel values are v usable (never an anchor, positive or negative otherwise)?</summary>
    public bool IsValid(ReadOnlySpan<float> v)
    {
        foreach (var x in v) if (!float.IsFinite(x)) return false;
        return Metric switch
        {
            CcrLabelMetric.Discrete => v[0] != IgnoreIndex,
            CcrLabelMetric.L1 => v[0] > 0f,
            _ => v[0] != 0f || v[1] != 0f || v[2] != 0f,
        };
    }
}

/// <summary>
/// One task's labels for CCR: host values (N, L, H*W) at some resolution, the validity mask
/// (N, H*W) computed on the host from them, and both uploaded. <see cref="Resized"/> makes (and
/// caches) the nearest-neighbour downsampled copy for a projection map with PyTorch's
/// interpolate(mode='nearest') rule, the one rule of the project (<see cref="Resize.NearestSrc"/>).
/// Discrete labels are stored as floats (class ids are exact), binarised ones as 0 / 1.
/// Owns its tensors: dispose it (or let the step's TensorScope do so).
/// </summary>
public sealed class TaskLabels : IDisposable
{
    public LabelSpace Space { get; }
    public int N { get; }
    public int H { get; }
    public int W { get; }
    /// <summary>(N, L, H*W) host values after binarising.</summary>
    public float[] Values { get; }
    /// <summary>(N, H*W) host validity, 1 or 0.</summary>
    public int[] Valid { get; }

    readonly Device _device;
    Tensor? _values, _valid;
    readonly Dictionary<(int, int), TaskLabels> _resized = new();

    TaskLabels(Device d, LabelSpace space, float[] values, int n, int h, int w)
    {
        _device = d; Space = space; N = n; H = h; W = w;
        int hw = h * w, l = space.Channels;
        Values = new float[values.Length];
        Valid = new int[n * hw];
        Span<float> px = stackalloc float[l];
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++)
            {
                for (int c = 0; c < l; c++) px[c] = values[(b * l + c) * hw + i];
                bool ok = space.IsValid(px);
                Valid[b * hw + i] = ok ? 1 : 0;
                for (int c = 0; c < l; c++)
                    Values[(b * l + c) * hw + i] = ok && space.Binarise ? (px[c] > 0.5f ? 1f : 0f) : px[c];
            }
    }

    /// <summary>Labels (N, L, H, W) of <paramref name="task"/> as floats (class ids for discrete tasks).</summary>
    public static TaskLabels Create(Device d, string task, float[] values, int n, int h, int w)
    {
        var space = LabelSpace.For(task);
        if (n < 1 || h < 1 || w < 1 || values.Length != (long)n * space.Channels * h * w)
            throw new ArgumentException($"TaskLabels({task}): {values.Length} values for (N={n}, L={space.Channels}, H={h}, W={w})");
        return new TaskLabels(d, space, values, n, h, w);
    }

    /// <summary>Integer class labels (N, H, W) of a discrete task.</summary>
    public static TaskLabels Create(Device d, string task, int[] classes, int n, int h, int w) =>
        Create(d, task, Array.ConvertAll(classes, v => (float)v), n, h, w);

    /// <summary>Values on the device (N, L, H*W).</summary>
    public Tensor DeviceValues => _values ??= Own(Tensor.FromArray(_device, Values, N, Space.Channels, H * W));
    /// <summary>Validity on the device (N, H*W), int32.</summary>
    public Tensor DeviceValid => _valid ??= Own(Tensor.FromArray(_device, Valid, N, H * W));

    static Tensor Own(Tensor t) { TensorScope.Forget(t); return t; }

    /// <summary>Nearest-neighbour resize to h x w, cached: the source pixels of
    /// <see cref="Resize.NearestSrc"/> (PyTorch's float arithmetic, as <c>F.ResizeNearestLabels</c>).</summary>
    public TaskLabels Resized(int h, int w)
    {
        if (h == H && w == W) return this;
        if (_resized.TryGetValue((h, w), out var r)) return r;
        if (h < 1 || w < 1) throw new ArgumentException($"TaskLabels({Space.Task}).Resized: size {h}x{w} must be positive");
        int l = Space.Channels;
        var v = new float[N * l * h * w];
        float sh = Resize.Scale(H, h), sw = Resize.Scale(W, w);
        for (int b = 0; b < N; b++)
            for (int c = 0; c < l; c++)
                for (int y = 0; y < h; y++)
                {
                    int sy = Resize.NearestSrc(y, H, h, sh);
                    for (int x = 0; x < w; x++)
                    {
                        int sx = Resize.NearestSrc(x, W, w, sw);
                        // ignored pixels keep their marker, so validity is recomputed identically
                        v[((b * l + c) * h + y) * w + x] = Valid[b * H * W + sy * W + sx] != 0
                            ? Values[(b * l + c) * H * W + sy * W + sx] : Invalid(c);
                    }
                }
        r = new TaskLabels(_device, Space with { Binarise = false }, v, N, h, w);
        _resized[(h, w)] = r;
        return r;
    }

    float Invalid(int c) => Space.Metric switch
    {
        CcrLabelMetric.Discrete => LabelSpace.IgnoreIndex,
        _ => 0f,
    };

    public void Dispose()
    {
        _values?.Dispose(); _valid?.Dispose();
        foreach (var r in _resized.Values) r.Dispose();
        _resized.Clear();
    }
}
