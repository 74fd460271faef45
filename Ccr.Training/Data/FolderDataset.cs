namespace Ccr.Training.Data;

/// <summary>
/// The shared part of the on-disk datasets: the split file, a check at construction that every
/// listed sample has its image and the label files of the requested tasks, and the policy for bad
/// samples. With <see cref="BadSamplePolicy.Stop"/> the first missing file throws a
/// <see cref="DataFileException"/> naming the file, the id and the split file; with
/// <see cref="BadSamplePolicy.Skip"/> the sample is dropped and counted in <see cref="Skipped"/>.
/// Files that exist but are corrupt or of the wrong shape are found when loaded
/// (<see cref="Get"/> throws; the <see cref="DataLoader"/> applies the policy there).
/// </summary>
public abstract class FolderDataset : IDataset
{
    private readonly List<string> _ids = [];
    private readonly List<string> _skipped = [];

    public string Root { get; }
    public string Split { get; }
    public string SplitFile { get; }
    public DatasetInfo Info { get; }
    public string Name => Info.Name;
    public IReadOnlyList<string> Tasks { get; }
    public BadSamplePolicy Policy { get; }
    public int Count => _ids.Count;
    public IReadOnlyList<string> Ids => _ids;
    /// <summary>"path: problem" for every sample dropped at construction.</summary>
    public IReadOnlyList<string> Skipped => _skipped;

    protected FolderDataset(string root, string split, IEnumerable<string>? tasks, DatasetInfo info,
        BadSamplePolicy policy, string splitFile)
    {
        Root = root;
        Split = split;
        Info = info;
        Policy = policy;
        SplitFile = splitFile;
        var t = (tasks ?? info.AvailableTasks).Select(TaskNames.Validate).ToList();
        foreach (string task in t)
            if (!info.AvailableTasks.Contains(task))
                throw new ArgumentException($"dataset '{info.Name}' has no task '{task}' (has: {string.Join(", ", info.AvailableTasks)})");
        Tasks = t;
        if (!Directory.Exists(root)) throw new DataFileException(root, "dataset folder not found");
        if (!File.Exists(splitFile)) throw new DataFileException(splitFile, $"split file of '{split}' not found");
        foreach (string raw in File.ReadLines(splitFile))
        {
            string id = raw.Trim();
            if (id.Length == 0) continue;
            string? missing = RequiredFiles(id).FirstOrDefault(f => !File.Exists(f));
            if (missing == null) { _ids.Add(id); continue; }
            var error = new DataFileException(missing, $"file of id '{id}' listed in {splitFile} does not exist");
            if (policy == BadSamplePolicy.Stop) throw error;
            _skipped.Add(error.Message);
        }
    }

    public string GetId(int index) => _ids[index];

    public Sample Get(int index)
    {
        string id = _ids[index];
        var s = Load(id);
        s.Validate();
        return s;
    }

    /// <summary>Loads one sample; throws <see cref="DataFileException"/> on a bad file.</summary>
    protected abstract Sample Load(string id);

    /// <summary>The files a sample needs for the requested tasks (existence is checked up front).</summary>
    protected abstract IEnumerable<string> RequiredFiles(string id);

    /// <summary>The first of the candidate paths that exists, else the first (for the error message).</summary>
    protected static string FirstExisting(params string[] candidates) =>
        candidates.FirstOrDefault(File.Exists) ?? candidates[0];

    protected static void CheckSize(string path, int h, int w, int height, int width)
    {
        if (h != height || w != width)
            throw new DataFileException(path, $"label is {h}x{w} (HxW) but the image is {height}x{width}");
    }

    /// <summary>Reads a (H, W) float map from .npy ((H, W), (H, W, 1) or (1, H, W)) or from a PNG (v / 255).</summary>
    protected static float[] ReadMap(string path, int height, int width)
    {
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            var a = Npy.Read(path);
            bool ok = a.Count == height * width && (a.Shape.Length == 2 ||
                (a.Shape.Length == 3 && (a.Shape[0] == 1 || a.Shape[2] == 1)));
            if (!ok || (a.Shape.Length == 2 && (a.Shape[0] != height || a.Shape[1] != width)))
                throw new DataFileException(path, $"wrong shape {a.ShapeText}, expected ({height}, {width})");
            return a.ToFloat();
        }
        var v = ImageIo.LoadLabel(path, out int h, out int w);
        CheckSize(path, h, w, height, width);
        var r = new float[v.Length];
        for (int i = 0; i < r.Length; i++) r[i] = v[i] / 255f;
        return r;
    }

    /// <summary>Normals from .npy (H, W, 3) or a PNG with n = 2 v / 255 - 1; to (3, H, W), zero where invalid.</summary>
    protected static float[] ReadNormals(string path, int height, int width)
    {
        int n = height * width;
        var r = new float[3 * n];
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            var a = Npy.Read(path, height, width, 3);
            for (int i = 0; i < n; i++)
                for (int c = 0; c < 3; c++)
                {
                    double v = a.Data[3 * i + c];
                    r[c * n + i] = double.IsFinite(v) ? (float)v : 0f;
                }
            return r;
        }
        var b = ImageIo.LoadRgbBytes(path, out int h, out int w);
        CheckSize(path, h, w, height, width);
        for (int i = 0; i < n; i++)
        {
            // A (0, 0, 0) pixel marks "no normal" in the distilled PNGs.
            if (b[3 * i] == 0 && b[3 * i + 1] == 0 && b[3 * i + 2] == 0) continue;
            for (int c = 0; c < 3; c++) r[c * n + i] = 2f * b[3 * i + c] / 255f - 1f;
        }
        return r;
    }

    /// <summary>Edge map to 0/1 with 255 kept as ignore.</summary>
    protected static float[] Binarise(float[] e)
    {
        for (int i = 0; i < e.Length; i++) e[i] = e[i] == 255f ? 255f : e[i] > 0.5f ? 1f : 0f;
        return e;
    }
}
