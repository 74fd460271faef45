namespace Ccr.Training.Data;

/// <summary>
/// N samples stacked into NCHW host arrays, ready to upload. Samples of different sizes (full-
/// resolution evaluation) are padded at the bottom and right to the largest; padding is image 0,
/// labels ignore (255) / invalid (depth 0, normals 0), and <see cref="Heights"/> /
/// <see cref="Widths"/> keep each sample's own size so predictions can be cropped back.
/// </summary>
public sealed class Batch
{
    public int N { get; init; }
    public int Height { get; init; }
    public int Width { get; init; }
    public required string[] Ids { get; init; }
    public required int[] Heights { get; init; }
    public required int[] Widths { get; init; }
    /// <summary>The dataset indices of the samples (after any skip substitution).</summary>
    public required int[] Indices { get; init; }

    /// <summary>(N, 3, H, W), ImageNet-normalised.</summary>
    public required float[] Images { get; init; }
    /// <summary>(N, H, W), 255 ignore.</summary>
    public int[]? Semseg { get; init; }
    /// <summary>(N, 1, H, W), 0 invalid.</summary>
    public float[]? Depth { get; init; }
    /// <summary>(N, 3, H, W), zero invalid.</summary>
    public float[]? Normals { get; init; }
    /// <summary>(N, 1, H, W), 0/1, 255 ignore.</summary>
    public float[]? Edge { get; init; }
    /// <summary>(N, H, W), 0/1, 255 ignore.</summary>
    public int[]? Saliency { get; init; }
    /// <summary>(N, H, W), 255 ignore.</summary>
    public int[]? Parts { get; init; }

    public static Batch Stack(IReadOnlyList<Sample> samples, IReadOnlyList<int> indices)
    {
        if (samples.Count == 0) throw new ArgumentException("cannot stack an empty batch");
        int n = samples.Count, h = samples.Max(s => s.Height), w = samples.Max(s => s.Width), p = h * w;
        var first = samples[0];
        var images = new float[n * 3 * p];
        var semseg = first.Semseg != null ? Fill(n * p, Sample.Ignore) : null;
        var parts = first.Parts != null ? Fill(n * p, Sample.Ignore) : null;
        var sal = first.Saliency != null ? Fill(n * p, Sample.Ignore) : null;
        var edge = first.Edge != null ? Fill(n * p, (float)Sample.Ignore) : null;
        var depth = first.Depth != null ? new float[n * p] : null;
        var normals = first.Normals != null ? new float[n * 3 * p] : null;
        for (int b = 0; b < n; b++)
        {
            var s = samples[b];
            int sp = s.Pixels;
            var norm = new float[3 * sp];
            Augment.Normalize(s.Image, norm, sp);
            for (int y = 0; y < s.Height; y++)
            {
                int src = y * s.Width, dst = y * w;
                for (int c = 0; c < 3; c++)
                    Array.Copy(norm, c * sp + src, images, (b * 3 + c) * p + dst, s.Width);
                Row(s.Semseg, semseg, "semseg");
                Row(s.Parts, parts, "human_parts");
                Row(s.Saliency, sal, "sal");
                Row(s.Edge, edge, "edge");
                Row(s.Depth, depth, "depth");
                if (normals != null)
                {
                    if (s.Normals == null) throw Missing(s, "normals");
                    for (int c = 0; c < 3; c++) Array.Copy(s.Normals, c * sp + src, normals, (b * 3 + c) * p + dst, s.Width);
                }

                void Row<T>(T[]? from, T[]? to, string task)
                {
                    if (to == null) return;
                    if (from == null) throw Missing(s, task);
                    Array.Copy(from, src, to, b * p + dst, s.Width);
                }
            }
        }
        return new Batch
        {
            N = n, Height = h, Width = w, Ids = samples.Select(s => s.Id).ToArray(),
            Heights = samples.Select(s => s.Height).ToArray(), Widths = samples.Select(s => s.Width).ToArray(),
            Indices = indices.ToArray(), Images = images, Semseg = semseg, Parts = parts, Saliency = sal,
            Edge = edge, Depth = depth, Normals = normals,
        };
    }

    /// <summary>
    /// Sample b of an (N, C, H, W) array (a prediction or a label) cropped to that sample's own
    /// size: (C, Heights[b], Widths[b]), ready for the metrics and <see cref="PredictionWriter"/>.
    /// </summary>
    public T[] Slice<T>(T[] data, int b, int channels)
    {
        int p = Height * Width, h = Heights[b], w = Widths[b];
        if (data.Length != N * channels * p)
            throw new ArgumentException($"array of {data.Length} values is not ({N}, {channels}, {Height}, {Width})");
        var r = new T[channels * h * w];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                Array.Copy(data, (b * channels + c) * p + y * Width, r, (c * h + y) * w, w);
        return r;
    }

    private static InvalidOperationException Missing(Sample s, string task) =>
        new($"sample '{s.Id}' has no {task} label but the first sample of its batch has one");

    private static T[] Fill<T>(int n, T v)
    {
        var a = new T[n];
        Array.Fill(a, v);
        return a;
    }
}
