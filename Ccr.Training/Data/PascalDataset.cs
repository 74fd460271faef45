namespace Ccr.Training.Data;

/// <summary>
/// PASCAL-Context in the ATRC / MTI-Net layout (docs/guide/PROTOCOLS.md): JPEGImages/&lt;id&gt;.jpg,
/// ImageSets/Context/&lt;split&gt;.txt, semseg/pascal-context/&lt;id&gt;.png (21 classes, 255 ignore),
/// human_parts/&lt;id&gt;.mat, normals_distill/&lt;id&gt;.png, sal_distill/&lt;id&gt;.png,
/// pascal-context/trainval/&lt;id&gt;.mat (LabelMap, for edges).
/// Labels as the reference loaders read them (<see cref="PascalLabels"/>):
/// <list type="bullet">
/// <item>Human parts: persons (class_ind 15) with part masks are painted with the 6 part classes
/// of MTI-Net's pascal_part.json (1 head, 2 torso, 3 upper arms, 4 lower arms and hands, 5 upper
/// legs, 6 lower legs and feet), every other pixel 0 (background); an image with no part pixel
/// (no person, or persons without parts) is not annotated: all 255, as the reference's
/// AddIgnoreRegions makes it. A missing parts .mat file means the same (the file is optional).</item>
/// <item>Normals: the PNG decoded as n = 2 v / 255 - 1 on every pixel, kept only where the
/// LabelMap class is in <see cref="PascalLabels.NormalsValidClasses"/>, zero (invalid) elsewhere;
/// so the normals task needs the LabelMap .mat too.</item>
/// <item>Edges: thin(|Laplacian(LabelMap)| &gt; 0) exactly as scikit-image (<see cref="LabelOps"/>).</item>
/// <item>Saliency: v / 255 &gt; 0.5.</item>
/// </list>
/// </summary>
public sealed class PascalDataset : FolderDataset
{
    public const int PersonClass = 15;

    /// <summary>Part name -&gt; class, as MTI-Net's pascal_part.json maps the person's parts.</summary>
    public static readonly IReadOnlyDictionary<string, int> HumanPartClasses = new Dictionary<string, int>
    {
        ["hair"] = 1, ["head"] = 1, ["lear"] = 1, ["lebrow"] = 1, ["leye"] = 1, ["mouth"] = 1, ["nose"] = 1,
        ["rear"] = 1, ["rebrow"] = 1, ["reye"] = 1,
        ["neck"] = 2, ["torso"] = 2,
        ["luarm"] = 3, ["ruarm"] = 3,
        ["llarm"] = 4, ["rlarm"] = 4, ["lhand"] = 4, ["rhand"] = 4,
        ["luleg"] = 5, ["ruleg"] = 5,
        ["llleg"] = 6, ["rlleg"] = 6, ["lfoot"] = 6, ["rfoot"] = 6,
    };

    public PascalDataset(string root, string split = "val", IEnumerable<string>? tasks = null,
        BadSamplePolicy policy = BadSamplePolicy.Stop)
        : base(root, split, tasks, DatasetInfo.Pascal, policy, Path.Combine(root, "ImageSets", "Context", split + ".txt"))
    {
    }

    private string ImagePath(string id) => Path.Combine(Root, "JPEGImages", id + ".jpg");
    private string SemsegPath(string id) => Path.Combine(Root, "semseg", "pascal-context", id + ".png");
    private string PartsPath(string id) => Path.Combine(Root, "human_parts", id + ".mat");
    private string NormalsPath(string id) => Path.Combine(Root, "normals_distill", id + ".png");
    private string SalPath(string id) => Path.Combine(Root, "sal_distill", id + ".png");
    private string LabelMapPath(string id) => Path.Combine(Root, "pascal-context", "trainval", id + ".mat");

    protected override IEnumerable<string> RequiredFiles(string id)
    {
        yield return ImagePath(id);
        foreach (string t in Tasks)
        {
            switch (t)
            {
                case TaskNames.Semseg: yield return SemsegPath(id); break;
                case TaskNames.Normals: yield return NormalsPath(id); yield return LabelMapPath(id); break;
                case TaskNames.Saliency: yield return SalPath(id); break;
                case TaskNames.Edge: yield return LabelMapPath(id); break;
            }
        }
    }

    protected override Sample Load(string id)
    {
        var image = ImageIo.LoadRgb(ImagePath(id), out int h, out int w);
        var s = new Sample { Id = id, Height = h, Width = w, Image = image };
        int[]? labelMap = null;  // read once for normals and edges
        int[] LabelMap() => labelMap ??= ReadLabelMap(LabelMapPath(id), h, w);
        foreach (string task in Tasks)
        {
            switch (task)
            {
                case TaskNames.Semseg:
                {
                    string path = SemsegPath(id);
                    var l = ImageIo.LoadLabel(path, out int lh, out int lw);
                    CheckSize(path, lh, lw, h, w);
                    NyudDataset.CheckClasses(path, l, Info.SemsegClasses);
                    s.Semseg = l;
                    break;
                }
                case TaskNames.HumanParts:
                    s.Parts = LoadParts(PartsPath(id), h, w);
                    PascalLabels.IgnoreUnannotatedParts(s.Parts);
                    break;
                case TaskNames.Normals:
                    s.Normals = ReadDistilledNormals(NormalsPath(id), h, w);
                    PascalLabels.MaskNormals(s.Normals, LabelMap());
                    break;
                case TaskNames.Saliency:
                {
                    var m = ReadMap(SalPath(id), h, w);
                    s.Saliency = m.Select(v => v > 0.5f ? 1 : 0).ToArray();
                    break;
                }
                case TaskNames.Edge: s.Edge = LabelOps.EdgeFromLabelMap(LabelMap(), h, w); break;
            }
        }
        return s;
    }

    /// <summary>The (H, W) context classes of pascal-context/trainval/&lt;id&gt;.mat's LabelMap.</summary>
    public static int[] ReadLabelMap(string path, int height, int width)
    {
        var lm = MatFile.ReadVariable(path, "LabelMap") as MatNumeric
            ?? throw new DataFileException(path, "'LabelMap' is not a numeric array");
        try
        {
            var labels = lm.ToRowMajorInt(out int mh, out int mw);
            CheckSize(path, mh, mw, height, width);
            return labels;
        }
        catch (InvalidOperationException e) { throw new DataFileException(path, e.Message, e); }
    }

    /// <summary>normals_distill PNG to (3, H, W) with n = 2 v / 255 - 1 on every pixel (float32, as
    /// the reference computes it); a (0, 0, 0) pixel is (-1, -1, -1) there too.</summary>
    public static float[] ReadDistilledNormals(string path, int height, int width)
    {
        var b = ImageIo.LoadRgbBytes(path, out int h, out int w);
        CheckSize(path, h, w, height, width);
        int n = h * w;
        var r = new float[3 * n];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) r[c * n + i] = 2f * b[3 * i + c] / 255f - 1f;
        return r;
    }

    /// <summary>
    /// Paints the part masks of every person of anno.objects(i).parts(j) into an (H, W) label:
    /// 0 background, 1..6 parts (later parts over earlier ones); all 255 when the image has no
    /// parts file. <see cref="PascalLabels.IgnoreUnannotatedParts"/> then applies the reference's
    /// ignore rule.
    /// </summary>
    public static int[] LoadParts(string path, int height, int width)
    {
        var target = new int[height * width];
        if (!File.Exists(path))
        {
            Array.Fill(target, Sample.Ignore);
            return target;
        }
        try
        {
            var anno = MatFile.ReadVariable(path, "anno") as MatStruct
                ?? throw new DataFileException(path, "'anno' is not a struct");
            if (anno.Elements.Length == 0) return target;
            if (anno.Field(0, "objects") is not MatStruct objects) return target;
            for (int i = 0; i < objects.Elements.Length; i++)
            {
                if (objects.Field(i, "class_ind") is not MatNumeric cls || cls.IsEmpty || (int)cls.Scalar != PersonClass) continue;
                if (objects.Field(i, "parts") is not MatStruct parts) continue;
                for (int j = 0; j < parts.Elements.Length; j++)
                {
                    string name = (parts.Field(j, "part_name") as MatChar)?.Value
                        ?? throw new DataFileException(path, $"objects({i + 1}).parts({j + 1}).part_name is not a string");
                    if (!HumanPartClasses.TryGetValue(name, out int cls2))
                        throw new DataFileException(path, $"unknown human part '{name}' in objects({i + 1}).parts({j + 1})");
                    if (parts.Field(j, "mask") is not MatNumeric mask)
                        throw new DataFileException(path, $"objects({i + 1}).parts({j + 1}).mask is not numeric");
                    var m = mask.ToRowMajorInt(out int mh, out int mw);
                    CheckSize(path, mh, mw, height, width);
                    for (int k = 0; k < m.Length; k++) if (m[k] != 0) target[k] = cls2;
                }
            }
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException)
        {
            throw new DataFileException(path, e.Message, e);
        }
        return target;
    }
}
