namespace Ccr.Training.Data;

/// <summary>
/// Saved predictions in the formats of docs/guide/PROTOCOLS.md, at the original image size, under
/// DIR/&lt;task&gt;/&lt;id&gt;.png|npy: semseg / human_parts as class-index grayscale PNG; normals as
/// RGB PNG 255 (n + 1) / 2 of the L2-normalised vector; sal and edge as grayscale PNG
/// 255 x probability; depth as float32 .npy (H, W) in metres. <see cref="Read"/> is the inverse
/// that <c>score</c> uses; it also accepts normals as .npy (H, W, 3) for lossless checks.
/// </summary>
public sealed class PredictionWriter
{
    public string Root { get; }

    public PredictionWriter(string root)
    {
        Root = root;
    }

    public static string PathFor(string root, string task, string id) =>
        Path.Combine(root, task, id + (task == TaskNames.Depth ? ".npy" : ".png"));

    /// <summary>
    /// Writes one prediction: int[] (H, W) for semseg / human_parts, float[] (H, W) for depth,
    /// edge and sal (probabilities), float[] (3, H, W) for normals.
    /// </summary>
    public void Write(string task, string id, object prediction, int height, int width)
    {
        string path = PathFor(Root, task, id);
        int n = height * width;
        switch (task)
        {
            case TaskNames.Semseg or TaskNames.HumanParts:
            {
                var p = As<int>(prediction, task, n);
                var b = new byte[n];
                for (int i = 0; i < n; i++)
                    b[i] = (uint)p[i] <= 255 ? (byte)p[i] : throw new ArgumentException($"{task} class {p[i]} of '{id}' does not fit a PNG byte");
                ImageIo.SaveGray(path, b, height, width);
                break;
            }
            case TaskNames.Depth:
                Npy.WriteFloat32(path, As<float>(prediction, task, n), height, width);
                break;
            case TaskNames.Normals:
            {
                var p = As<float>(prediction, task, 3 * n);
                var b = new byte[3 * n];
                for (int i = 0; i < n; i++)
                {
                    double x = p[i], y = p[n + i], z = p[2 * n + i], l = Math.Sqrt(x * x + y * y + z * z);
                    if (l > 0) { x /= l; y /= l; z /= l; }
                    b[3 * i] = ImageIo.ToByte((float)(255 * (x + 1) / 2));
                    b[3 * i + 1] = ImageIo.ToByte((float)(255 * (y + 1) / 2));
                    b[3 * i + 2] = ImageIo.ToByte((float)(255 * (z + 1) / 2));
                }
                ImageIo.SaveRgb(path, b, height, width);
                break;
            }
            case TaskNames.Edge or TaskNames.Saliency:
            {
                var p = As<float>(prediction, task, n);
                var b = new byte[n];
                for (int i = 0; i < n; i++) b[i] = ImageIo.ToByte(255f * p[i]);
                ImageIo.SaveGray(path, b, height, width);
                break;
            }
            default: throw new ArgumentException($"unknown task '{task}'");
        }
    }

    private static T[] As<T>(object prediction, string task, int n)
    {
        var a = prediction as T[] ?? throw new ArgumentException($"{task} prediction must be {typeof(T).Name}[]");
        if (a.Length != n) throw new ArgumentException($"{task} prediction has {a.Length} values, expected {n}");
        return a;
    }

    /// <summary>
    /// Reads a saved prediction back as the metrics take it, at height x width. Besides our own
    /// formats it reads what Multi-Task-Learning-PyTorch saves: depth as DIR/depth/&lt;id&gt;.mat
    /// (variable <c>depth</c>, used when there is no .npy) and class-index PNGs with any palette
    /// (raw indices, as PIL reads them). A prediction of another size is an error unless
    /// <paramref name="resize"/>: then class indices are resized nearest (PyTorch's rule,
    /// <see cref="Kernels.Ops.Resize.NearestSrc"/>) and continuous maps (depth, normals, sal, edge)
    /// bilinearly (align_corners=False), as torch.nn.functional.interpolate does.
    /// Throws <see cref="DataFileException"/> naming the file when it is missing or wrong.
    /// </summary>
    public static object Read(string root, string task, string id, int height, int width, bool resize = false)
    {
        var (data, channels, h, w, path) = ReadOwnSize(root, task, id);
        if (h == height && w == width) return data;
        if (!resize)
            throw new DataFileException(path, $"prediction is {h}x{w} (HxW) but the image is {height}x{width}; " +
                "save at the original size, or pass --resize to resize it (nearest for class indices, bilinear otherwise)");
        if (data is int[] labels) return Kernels.Ops.Resize.Reference.NearestLabels(labels, channels, h, w, height, width);
        var f = (float[])data;
        var up = Kernels.Ops.Resize.Reference.Bilinear(Array.ConvertAll(f, v => (double)v), channels, h, w, height, width);
        return Array.ConvertAll(up, v => (float)v);
    }

    /// <summary>The prediction at its own size: int[] (H, W) class indices or float[] (C, H, W).</summary>
    private static (object Data, int Channels, int H, int W, string Path) ReadOwnSize(string root, string task, string id)
    {
        if (task == TaskNames.Normals)
        {
            string npy = Path.Combine(root, task, id + ".npy");
            if (File.Exists(npy))
            {
                var a = Npy.Read(npy);
                if (a.Shape.Length != 3 || a.Shape[2] != 3) throw new DataFileException(npy, $"wrong shape {a.ShapeText}, expected (H, W, 3)");
                int hn = a.Shape[0], wn = a.Shape[1], nn = hn * wn;
                var r = new float[3 * nn];
                for (int i = 0; i < nn; i++)
                    for (int c = 0; c < 3; c++) r[c * nn + i] = (float)a.Data[3 * i + c];
                return (r, 3, hn, wn, npy);
            }
        }
        string path = PathFor(root, task, id);
        switch (task)
        {
            case TaskNames.Depth:
            {
                string mat = Path.ChangeExtension(path, ".mat");
                if (!File.Exists(path) && File.Exists(mat)) return ReadDepthMat(mat);
                if (!File.Exists(path)) throw new DataFileException(path, "file not found (nor " + Path.GetFileName(mat) + ")");
                var a = Npy.Read(path);
                (int hd, int wd) = a.Shape.Length switch
                {
                    2 => (a.Shape[0], a.Shape[1]),
                    3 when a.Shape[0] == 1 => (a.Shape[1], a.Shape[2]),
                    3 when a.Shape[2] == 1 => (a.Shape[0], a.Shape[1]),
                    _ => throw new DataFileException(path, $"wrong shape {a.ShapeText}, expected (H, W)"),
                };
                return (a.ToFloat(), 1, hd, wd, path);
            }
            case TaskNames.Semseg or TaskNames.HumanParts:
            {
                var l = ImageIo.LoadLabel(path, out int h, out int w);
                return (l, 1, h, w, path);
            }
            case TaskNames.Normals:
            {
                var b = ImageIo.LoadRgbBytes(path, out int h, out int w);
                int n = h * w;
                var r = new float[3 * n];
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < 3; c++) r[c * n + i] = 2f * b[3 * i + c] / 255f - 1f;
                return (r, 3, h, w, path);
            }
            case TaskNames.Edge or TaskNames.Saliency:
            {
                var l = ImageIo.LoadLabel(path, out int h, out int w);
                var r = new float[l.Length];
                for (int i = 0; i < r.Length; i++) r[i] = l[i] / 255f;
                return (r, 1, h, w, path);
            }
            default: throw new ArgumentException($"unknown task '{task}'");
        }
    }

    /// <summary>MTL's depth prediction: scipy.io.savemat(path, {'depth': (H, W) array}).</summary>
    private static (object, int, int, int, string) ReadDepthMat(string path)
    {
        if (MatFile.ReadVariable(path, "depth") is not MatNumeric m || m.Dims.Length != 2)
            throw new DataFileException(path, "variable 'depth' is not a 2-D numeric array");
        int h = m.Dims[0], w = m.Dims[1];
        var r = new float[h * w];
        for (int x = 0; x < w; x++)
            for (int y = 0; y < h; y++) r[y * w + x] = (float)m.Data[x * h + y];  // MATLAB is column-major
        return (r, 1, h, w, path);
    }
}
