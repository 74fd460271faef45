using System.Globalization;
using System.Text.Json;

namespace Ccr.Training.Data;

/// <summary>
/// SynthRooms, the embedded default dataset: indoor-like box rooms rendered on the CPU (see
/// <see cref="SynthScene"/>, <see cref="SynthRoomsRenderer"/>). A sample is a pure function of
/// (seed, index, height, width). Train sample i is scene index i, val sample i is scene index
/// <see cref="ValIndexOffset"/> + i and test sample i scene index <see cref="TestIndexOffset"/> + i,
/// so the splits never share a scene (as long as train and val hold fewer than a million images).
/// </summary>
public sealed class SynthRoomsDataset : IDataset
{
    public const int ValIndexOffset = 1_000_000;
    public const int TestIndexOffset = 2_000_000;

    public ulong Seed { get; }
    public string Split { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count { get; }
    public string Name => "synth";
    public DatasetInfo Info => DatasetInfo.Synth;
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>An in-memory dataset that renders each sample when asked (no files).</summary>
    public SynthRoomsDataset(string split, int count, int height, int width, ulong seed = 0, IEnumerable<string>? tasks = null)
    {
        if (split is not ("train" or "val" or "test")) throw new ArgumentException($"SynthRooms split must be train, val or test, got '{split}'");
        if (count > ValIndexOffset) throw new ArgumentException($"SynthRooms: at most {ValIndexOffset} images per split, got {count}");
        if (count < 0 || height < 2 || width < 2) throw new ArgumentException($"SynthRooms: bad size {count} x {height}x{width}");
        Split = split;
        Count = count;
        Height = height;
        Width = width;
        Seed = seed;
        Tasks = (tasks ?? Info.AvailableTasks).Select(TaskNames.Validate).ToList();
    }

    public int SceneIndex(int index) => Split switch { "train" => index, "val" => ValIndexOffset + index, _ => TestIndexOffset + index };

    public string GetId(int index) => $"{Split}_{index:D6}";

    public Sample Get(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"SynthRooms index {index} of {Count}");
        var s = SynthRoomsRenderer.Render(Seed, SceneIndex(index), Height, Width, GetId(index));
        if (!Tasks.Contains(TaskNames.Semseg)) s.Semseg = null;
        if (!Tasks.Contains(TaskNames.Depth)) s.Depth = null;
        if (!Tasks.Contains(TaskNames.Normals)) s.Normals = null;
        if (!Tasks.Contains(TaskNames.Edge)) s.Edge = null;
        if (!Tasks.Contains(TaskNames.Saliency)) s.Saliency = null;
        if (!Tasks.Contains(TaskNames.HumanParts)) s.Parts = null;
        return s;
    }
}

/// <summary>
/// Writes SynthRooms sets to disk in the NYUD layout plus saliency/ and human_parts/, so that
/// <see cref="NyudDataset"/> with <see cref="DatasetInfo.Synth"/> reads them:
/// images/&lt;id&gt;.png, segmentation/&lt;id&gt;.png (class + 1), depth/&lt;id&gt;.npy (H, W) float32,
/// normals/&lt;id&gt;.npy (H, W, 3) float32, edge/&lt;id&gt;.png (0/255), saliency/&lt;id&gt;.png (0/255),
/// human_parts/&lt;id&gt;.png (0..4), gt_sets/train.txt, val.txt (and test.txt when a test split is
/// asked for), and synthrooms.json, written last, which marks the cache complete and records its
/// parameters.
/// </summary>
public static class SynthRooms
{
    public const int FormatVersion = 1;

    /// <summary>The cache folder name for a parameter set, e.g. data/synthrooms-96x128-s0-2000-300
    /// (and -T at the end with a test split of T images; sets made before test splits keep their name).</summary>
    public static string CacheDir(string dataRoot, int height, int width, ulong seed, int train, int val, int test = 0) =>
        Path.Combine(dataRoot, string.Create(CultureInfo.InvariantCulture,
            $"synthrooms-{height}x{width}-s{seed}-{train}-{val}{(test > 0 ? $"-{test}" : "")}"));

    /// <summary>Returns the cache folder, generating it first unless a complete one exists.</summary>
    public static string EnsureCached(string dataRoot, int height = 96, int width = 128, ulong seed = 0, int train = 2000, int val = 300, int test = 0)
    {
        string dir = CacheDir(dataRoot, height, width, seed, train, val, test);
        if (IsComplete(dir, height, width, seed, train, val, test)) return dir;
        Generate(dir, height, width, seed, train, val, test);
        return dir;
    }

    public static bool IsComplete(string dir, int height, int width, ulong seed, int train, int val, int test = 0)
    {
        string meta = Path.Combine(dir, "synthrooms.json");
        if (!File.Exists(meta)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(meta));
            var r = doc.RootElement;
            return r.GetProperty("version").GetInt32() == FormatVersion && r.GetProperty("height").GetInt32() == height
                && r.GetProperty("width").GetInt32() == width && r.GetProperty("seed").GetUInt64() == seed
                && r.GetProperty("train").GetInt32() == train && r.GetProperty("val").GetInt32() == val
                && (r.TryGetProperty("test", out var t) ? t.GetInt32() : 0) == test;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Renders and writes the splits (test only when <paramref name="test"/> > 0). Samples are
    /// rendered in parallel; each one's files are independent.</summary>
    public static void Generate(string dir, int height, int width, ulong seed, int train, int val, int test = 0)
    {
        Directory.CreateDirectory(dir);
        string meta = Path.Combine(dir, "synthrooms.json");
        if (File.Exists(meta)) File.Delete(meta);
        foreach (string sub in new[] { "images", "segmentation", "depth", "normals", "edge", "saliency", "human_parts", "gt_sets" })
            Directory.CreateDirectory(Path.Combine(dir, sub));
        var splits = new List<(string, int)> { ("train", train), ("val", val) };
        if (test > 0) splits.Add(("test", test));
        foreach (var (split, count) in splits)
        {
            var ds = new SynthRoomsDataset(split, count, height, width, seed);
            // Samples in parallel (each render is also row-parallel); every sample writes its own files.
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => WriteSample(dir, ds.Get(i)));
            File.WriteAllLines(Path.Combine(dir, "gt_sets", split + ".txt"), Enumerable.Range(0, count).Select(ds.GetId));
        }
        var info = new Dictionary<string, object>
        {
            ["version"] = FormatVersion, ["height"] = height, ["width"] = width, ["seed"] = seed,
            ["train"] = train, ["val"] = val, ["test"] = test, ["classes"] = SynthClasses.Names,
            ["parts"] = new[] { "background", "head", "torso", "arms", "legs" },
        };
        File.WriteAllText(meta, JsonSerializer.Serialize(info, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Writes one sample's files (every label must be present).</summary>
    public static void WriteSample(string dir, Sample s)
    {
        int h = s.Height, w = s.Width, n = h * w;
        ImageIo.SaveRgbPlanar(Path.Combine(dir, "images", s.Id + ".png"), s.Image, h, w);
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)(s.Semseg![i] == Sample.Ignore ? 0 : s.Semseg[i] + 1);
        ImageIo.SaveGray(Path.Combine(dir, "segmentation", s.Id + ".png"), b, h, w);
        Npy.WriteFloat32(Path.Combine(dir, "depth", s.Id + ".npy"), s.Depth, h, w);
        var hwc = new float[3 * n];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) hwc[3 * i + c] = s.Normals![c * n + i];
        Npy.WriteFloat32(Path.Combine(dir, "normals", s.Id + ".npy"), hwc, h, w, 3);
        for (int i = 0; i < n; i++) b[i] = (byte)(s.Edge![i] > 0.5f ? 255 : 0);
        ImageIo.SaveGray(Path.Combine(dir, "edge", s.Id + ".png"), b, h, w);
        for (int i = 0; i < n; i++) b[i] = (byte)(s.Saliency![i] == 1 ? 255 : 0);
        ImageIo.SaveGray(Path.Combine(dir, "saliency", s.Id + ".png"), b, h, w);
        for (int i = 0; i < n; i++) b[i] = (byte)s.Parts![i];
        ImageIo.SaveGray(Path.Combine(dir, "human_parts", s.Id + ".png"), b, h, w);
    }

    /// <summary>Opens a cached set with the loader that reads every NYUD-layout folder.</summary>
    public static NyudDataset Open(string dir, string split, IEnumerable<string>? tasks = null,
        BadSamplePolicy policy = BadSamplePolicy.Stop) => new(dir, split, tasks, policy, DatasetInfo.Synth);
}
