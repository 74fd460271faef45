namespace Ccr.Train.Data;

/// <summary>
/// Saved predictions in the formats of EVALUATION.md, at the original image size, under
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
    /// Reads a saved prediction back as the metrics take it, checking it is height x width.
    /// Throws <see cref="DataFileException"/> naming the file when it is missing or wrong.
    /// </summary>
    public static object Read(string root, string task, string id, int height, int width)
    {
        int n = height * width;
        if (task == TaskNames.Normals)
        {
            string npy = Path.Combine(root, task, id + ".npy");
            if (File.Exists(npy))
            {
                var a = Npy.Read(npy, height, width, 3);
                var r = new float[3 * n];
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < 3; c++) r[c * n + i] = (float)a.Data[3 * i + c];
                return r;
            }
        }
        string path = PathFor(root, task, id);
        switch (task)
        {
            case TaskNames.Depth:
            {
                var a = Npy.Read(path);
                bool ok = a.Shape.Length == 2 ? a.Shape[0] == height && a.Shape[1] == width
                    : a.Count == n && a.Shape.Length == 3 && (a.Shape[0] == 1 || a.Shape[2] == 1);
                if (!ok) throw new DataFileException(path, $"wrong shape {a.ShapeText}, expected ({height}, {width})");
                return a.ToFloat();
            }
            case TaskNames.Semseg or TaskNames.HumanParts:
            {
                var l = ImageIo.LoadLabel(path, out int h, out int w);
                CheckSize(path, h, w, height, width);
                return l;
            }
            case TaskNames.Normals:
            {
                var b = ImageIo.LoadRgbBytes(path, out int h, out int w);
                CheckSize(path, h, w, height, width);
                var r = new float[3 * n];
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < 3; c++) r[c * n + i] = 2f * b[3 * i + c] / 255f - 1f;
                return r;
            }
            case TaskNames.Edge or TaskNames.Saliency:
            {
                var l = ImageIo.LoadLabel(path, out int h, out int w);
                CheckSize(path, h, w, height, width);
                var r = new float[n];
                for (int i = 0; i < n; i++) r[i] = l[i] / 255f;
                return r;
            }
            default: throw new ArgumentException($"unknown task '{task}'");
        }
    }

    private static void CheckSize(string path, int h, int w, int height, int width)
    {
        if (h != height || w != width)
            throw new DataFileException(path, $"prediction is {h}x{w} (HxW) but the image is {height}x{width}; save at the original size");
    }
}
