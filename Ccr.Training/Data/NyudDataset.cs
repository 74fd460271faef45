namespace Ccr.Training.Data;

/// <summary>
/// NYUD-v2 in the ATRC / MTI-Net layout (docs/guide/PROTOCOLS.md): images/&lt;id&gt;.jpg|png,
/// segmentation/&lt;id&gt;.png (0 unlabelled -&gt; 255, else label - 1), depth/&lt;id&gt;.npy (metres, 0
/// invalid), normals/&lt;id&gt;.npy (H, W, 3) or .png, edge/&lt;id&gt;.npy|png, gt_sets/&lt;split&gt;.txt.
/// The same class reads a SynthRooms cache, which adds saliency/&lt;id&gt;.png (v / 255 &gt; 0.5) and
/// human_parts/&lt;id&gt;.png (class index); pass <see cref="DatasetInfo.Synth"/> for it.
/// </summary>
public sealed class NyudDataset : FolderDataset
{
    public NyudDataset(string root, string split = "val", IEnumerable<string>? tasks = null,
        BadSamplePolicy policy = BadSamplePolicy.Stop, DatasetInfo? info = null)
        : base(root, split, tasks, info ?? DatasetInfo.Nyud, policy, Path.Combine(root, "gt_sets", split + ".txt"))
    {
    }

    private string ImagePath(string id) =>
        FirstExisting(Path.Combine(Root, "images", id + ".jpg"), Path.Combine(Root, "images", id + ".png"));

    private string TaskPath(string task, string id) => task switch
    {
        TaskNames.Semseg => Path.Combine(Root, "segmentation", id + ".png"),
        TaskNames.Depth => Path.Combine(Root, "depth", id + ".npy"),
        TaskNames.Normals => FirstExisting(Path.Combine(Root, "normals", id + ".npy"), Path.Combine(Root, "normals", id + ".png")),
        TaskNames.Edge => FirstExisting(Path.Combine(Root, "edge", id + ".npy"), Path.Combine(Root, "edge", id + ".png")),
        TaskNames.Saliency => Path.Combine(Root, "saliency", id + ".png"),
        TaskNames.HumanParts => Path.Combine(Root, "human_parts", id + ".png"),
        _ => throw new ArgumentException(task),
    };

    protected override IEnumerable<string> RequiredFiles(string id) =>
        Tasks.Select(t => TaskPath(t, id)).Prepend(ImagePath(id));

    protected override Sample Load(string id)
    {
        var image = ImageIo.LoadRgb(ImagePath(id), out int h, out int w);
        var s = new Sample { Id = id, Height = h, Width = w, Image = image };
        foreach (string task in Tasks)
        {
            string path = TaskPath(task, id);
            switch (task)
            {
                case TaskNames.Semseg:
                {
                    var raw = ImageIo.LoadLabel(path, out int lh, out int lw);
                    CheckSize(path, lh, lw, h, w);
                    for (int i = 0; i < raw.Length; i++) raw[i] = raw[i] == 0 || raw[i] == 255 ? Sample.Ignore : raw[i] - 1;
                    CheckClasses(path, raw, Info.SemsegClasses);
                    s.Semseg = raw;
                    break;
                }
                case TaskNames.Depth:
                {
                    var d = ReadMap(path, h, w);
                    for (int i = 0; i < d.Length; i++) if (!(d[i] > 0) || !float.IsFinite(d[i])) d[i] = 0;
                    s.Depth = d;
                    break;
                }
                case TaskNames.Normals: s.Normals = ReadNormals(path, h, w); break;
                case TaskNames.Edge: s.Edge = Binarise(ReadMap(path, h, w)); break;
                case TaskNames.Saliency:
                {
                    var m = ReadMap(path, h, w);
                    s.Saliency = m.Select(v => v > 0.5f ? 1 : 0).ToArray();
                    break;
                }
                case TaskNames.HumanParts:
                {
                    var p = ImageIo.LoadLabel(path, out int ph, out int pw);
                    CheckSize(path, ph, pw, h, w);
                    CheckClasses(path, p, Info.PartsClasses);
                    s.Parts = p;
                    break;
                }
            }
        }
        return s;
    }

    internal static void CheckClasses(string path, int[] labels, int classes)
    {
        foreach (int v in labels)
            if (v != Sample.Ignore && (v < 0 || v >= classes))
                throw new DataFileException(path, $"class {v} out of range 0..{classes - 1} (255 = ignore)");
    }
}
