using System.Globalization;
using Ccr.Train.Cli;
using Ccr.Training.Export;


namespace Ccr.Train.Commands;

/// <summary><c>Ccr.Train export</c>: a checkpoint's network (without the regulariser) as an ONNX model,
/// loaded back under ONNX Runtime and compared with our forward before it is reported done.</summary>
public static class ExportCommand
{
    /// <summary>The largest |ours - ONNX Runtime| accepted, relative to max(range of our output, 1).</summary>
    public const double Tolerance = 1e-4;

    public static readonly Args.Option[] Options =
    [
        new("checkpoint", "checkpoint file (its saved config builds the model)"),
        new("out", "the ONNX file to write", Default: "model.onnx"),
        new("tasks", "comma-separated tasks to export (default: all of the model's)"),
        new("height", "input height of a fixed-size model (default: the config's data.height)"),
        new("width", "input width of a fixed-size model (default: the config's data.width)"),
        new("dynamic", "batch, height and width symbolic (any size; padded to 32 inside the graph)", IsFlag: true),
        new("no-check", "skip the check under ONNX Runtime", IsFlag: true),
        new("config", "YAML config or preset overriding the checkpoint's"),
        new("set", "override a config key", Repeatable: true),
        new("device", "cuda, cpu or auto (runs the check's forward)"),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("export", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train export --checkpoint FILE --out model.onnx [--tasks a,b] [--height H --width W] [--dynamic]",
                "Writes the trained multi-task network as an ONNX model (opset 17): input 'image' float32 (N, 3, H, W),\n" +
                "RGB normalised as in training ((x - mean) / std, ImageNet's mean and std, x in [0, 1]); one output per\n" +
                "task at the input resolution: semseg_logits, human_parts_logits, depth, normals, edge_logits, sal_logits\n" +
                "(raw outputs: argmax / sigmoid / softmax as 'infer' does). Batch norm is folded into the convolutions.\n" +
                "Without --dynamic the shape is fixed at (1, 3, H, W). The file is then loaded by ONNX Runtime at its\n" +
                "strictest settings and its outputs compared with ours on a random image.", Options));
            return 0;
        }
        string ckpt = a.Get("checkpoint") ?? throw new UsageException("export: --checkpoint FILE is required");
        if (!File.Exists(ckpt)) throw new UsageException($"export: checkpoint '{ckpt}' does not exist");
        string outPath = a.Get("out")!;
        using var loaded = LoadedModel.Open(ckpt, a);
        bool dynamic = a.Flag("dynamic");
        int h = Size(a, "height", loaded.Config.Data.Height), w = Size(a, "width", loaded.Config.Data.Width);
        var tasks = a.Get("tasks")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        var known = loaded.Model.Tasks.Select(t => t.Name).ToList();
        if (tasks != null)
            foreach (var t in tasks)
                if (!known.Contains(t)) throw new UsageException($"export: --tasks: '{t}' is not a task of this model ({string.Join(", ", known)})");
        var opts = new OnnxExportOptions(tasks, dynamic ? 0 : h, dynamic ? 0 : w, dynamic);
        var model = OnnxExporter.Export(loaded.Model, opts, new Dictionary<string, string>
        {
            ["ccr.checkpoint"] = Path.GetFileName(ckpt),
            ["ccr.checkpoint_step"] = loaded.State.Step.ToString(CultureInfo.InvariantCulture),
        });
        OnnxExporter.Save(model, outPath);
        Console.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length / 1048576.0:F1} MiB): opset {OnnxExporter.Opset}, " +
            $"input image {(dynamic ? "(N, 3, H, W)" : $"(1, 3, {h}, {w})")}, outputs {string.Join(", ", (tasks ?? known).Select(OnnxExporter.OutputName))}");
        if (a.Flag("no-check")) return ExitCodes.Ok;

        // the check: ONNX Runtime at its strictest loading, then its outputs against ours on one random image
        using var runner = new OnnxRunner(outPath);
        int ch = dynamic ? Math.Min(h, 96) + 1 : h, cw = dynamic ? Math.Min(w, 128) + 3 : w; // dynamic: an odd size too
        var x = OnnxParity.RandomImage(1, ch, cw, seed: 1);
        var diffs = OnnxParity.Compare(loaded.Model, loaded.Device, runner, x, 1, ch, cw);
        foreach (var d in diffs)
            Console.WriteLine($"  {d.Task}: max |ours - onnxruntime| {d.MaxAbs:G3} (output range {d.Range:G3}) at {ch}x{cw}");
        var bad = diffs.Where(d => !(d.Relative <= Tolerance)).ToList();
        if (bad.Count == 0)
        {
            Console.WriteLine($"checked under ONNX Runtime: every output within {Tolerance:G2} x max(range, 1) of ours");
            return ExitCodes.Ok;
        }
        throw new InvalidOperationException($"export: ONNX Runtime's {string.Join(", ", bad.Select(d => d.Task))} differ from ours by more than " +
            $"{Tolerance:G2} x range ({string.Join(", ", bad.Select(d => $"{d.MaxAbs:G3} of {d.Range:G3}"))}); the file was written to {outPath}");
    }

    static int Size(Args a, string key, int fallback)
    {
        if (a.Get(key) is not string s) return fallback;
        if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1 || v > 16384)
            throw new UsageException($"export: --{key} must be a whole number of pixels in 1..16384, got '{s}'");
        return v;
    }
}
