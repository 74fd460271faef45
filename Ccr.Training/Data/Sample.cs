namespace Ccr.Training.Data;

/// <summary>
/// One host-side sample as a dataset returns it, before augmentation and normalisation.
/// Every label uses the conventions of docs/guide/PROTOCOLS.md so that losses and metrics never need to know
/// which dataset a sample came from:
/// <list type="bullet">
/// <item><c>Image</c> (3, H, W) RGB in [0, 1], not normalised (the loader applies ImageNet
/// normalisation last, see <see cref="Augment.Normalize"/>).</item>
/// <item><c>Semseg</c> / <c>Parts</c> (H, W) class indices, 255 = ignore.</item>
/// <item><c>Depth</c> (H, W) metres, 0 = invalid.</item>
/// <item><c>Normals</c> (3, H, W) unit vectors in the camera frame, the zero vector = invalid.</item>
/// <item><c>Edge</c> (H, W) 0 or 1, 255 = ignore (padding).</item>
/// <item><c>Saliency</c> (H, W) 0 or 1, 255 = ignore.</item>
/// </list>
/// A label that the dataset does not provide, or that was not requested, is null.
/// </summary>
public sealed class Sample
{
    public const int Ignore = 255;

    public required string Id { get; init; }
    public required int Height { get; init; }
    public required int Width { get; init; }

    /// <summary>(3, H, W) RGB in [0, 1].</summary>
    public required float[] Image { get; set; }
    /// <summary>(H, W), 255 = ignore.</summary>
    public int[]? Semseg { get; set; }
    /// <summary>(H, W) metres, 0 = invalid.</summary>
    public float[]? Depth { get; set; }
    /// <summary>(3, H, W), zero vector = invalid.</summary>
    public float[]? Normals { get; set; }
    /// <summary>(H, W) 0/1, 255 = ignore.</summary>
    public float[]? Edge { get; set; }
    /// <summary>(H, W) 0/1, 255 = ignore.</summary>
    public int[]? Saliency { get; set; }
    /// <summary>(H, W) human-part class, 0 = background, 255 = ignore.</summary>
    public int[]? Parts { get; set; }

    public int Pixels => Height * Width;

    /// <summary>Checks that every present array has the size its shape comment promises.</summary>
    public void Validate()
    {
        int n = Pixels;
        Check(Image.Length == 3 * n, "Image", Image.Length, 3 * n);
        if (Semseg != null) Check(Semseg.Length == n, "Semseg", Semseg.Length, n);
        if (Depth != null) Check(Depth.Length == n, "Depth", Depth.Length, n);
        if (Normals != null) Check(Normals.Length == 3 * n, "Normals", Normals.Length, 3 * n);
        if (Edge != null) Check(Edge.Length == n, "Edge", Edge.Length, n);
        if (Saliency != null) Check(Saliency.Length == n, "Saliency", Saliency.Length, n);
        if (Parts != null) Check(Parts.Length == n, "Parts", Parts.Length, n);
    }

    private void Check(bool ok, string what, int got, int want)
    {
        if (!ok)
            throw new InvalidOperationException(
                $"sample '{Id}': {what} has {got} values, expected {want} for {Height}x{Width}");
    }

    /// <summary>The label array of a task as an untyped object (int[] or float[]), or null.</summary>
    public object? Label(string task) => task switch
    {
        TaskNames.Semseg => Semseg,
        TaskNames.Depth => Depth,
        TaskNames.Normals => Normals,
        TaskNames.Edge => Edge,
        TaskNames.Saliency => Saliency,
        TaskNames.HumanParts => Parts,
        _ => throw new ArgumentException($"unknown task '{task}'"),
    };
}

/// <summary>What to do with a sample whose files are missing or unreadable.</summary>
public enum BadSamplePolicy
{
    /// <summary>Throw a <see cref="DataFileException"/> naming the file.</summary>
    Stop,
    /// <summary>Count it, drop it (at construction) or substitute the next good sample (at load).</summary>
    Skip,
}

/// <summary>A dataset file is missing, corrupt or of the wrong shape. The message names the path.</summary>
public sealed class DataFileException : Exception
{
    public string FilePath { get; }

    public DataFileException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
    }
}
