using Ccr.Nn;
using Ccr.Train.Cli;
using Ccr.Training.Data;
using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary><c>Ccr.Train infer</c>: colourised predictions of every task for a folder of images.</summary>
public static class InferCommand
{
    public static readonly Args.Option[] Options =
    [
        new("checkpoint", "checkpoint file (its saved config builds the model)"),
        new("onnx", "an exported ONNX model instead of a checkpoint (runs under ONNX Runtime's CPU provider)"),
        new("images", "folder of .jpg / .png images"),
        new("out", "folder for the pictures", Default: "predictions"),
        new("config", "YAML config or preset overriding the checkpoint's"),
        new("set", "override a config key", Repeatable: true),
        new("device", "cuda, cpu or auto"),
        new("depth-max", "depth in metres mapped to the far end of the colour map", Default: "10"),
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("infer", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train infer --checkpoint FILE|--onnx FILE --images DIR [--out DIR]",
                "Runs the multi-task network on every image of a folder and writes, per image, one PNG with\n" +
                "the input and each task's prediction side by side (class palette, depth colour map, normals\n" +
                "as RGB, edge and saliency as grey levels). Images that cannot be read are skipped and listed;\n" +
                "the exit code is then 1, with every readable image written.", Options));
            return 0;
        }
        string? ckpt = a.Get("checkpoint"), onnx = a.Get("onnx");
        if ((ckpt == null) == (onnx == null)) throw new UsageException("infer: give one of --checkpoint FILE and --onnx FILE");
        if (onnx != null && !File.Exists(onnx)) throw new UsageException($"infer: ONNX model '{onnx}' does not exist");
        string dir = a.Get("images") ?? throw new UsageException("infer: --images DIR is required");
        if (!Directory.Exists(dir)) throw new UsageException($"infer: image folder '{dir}' does not exist");
        if (!float.TryParse(a.Get("depth-max"), System.Globalization.CultureInfo.InvariantCulture, out float depthMax) || !(depthMax > 0) || !float.IsFinite(depthMax))
            throw new UsageException("infer: --depth-max must be a positive number");
        var files = Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase)
            || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".png", StringComparison.OrdinalIgnoreCase)).Order().ToList();
        if (files.Count == 0) throw new UsageException($"infer: no .jpg or .png images in '{dir}'");
        using var loaded = ckpt != null ? LoadedModel.Open(ckpt, a) : null;
        using var runner = onnx != null ? new Training.Export.OnnxRunner(onnx) : null;
        string outDir = a.Get("out")!;
        RunFolder.RefuseFile(outDir, "infer");
        var bad = new List<string>();
        int written = 0;
        // the memory budget measures our own forward; ONNX Runtime manages its own memory
        var budget = loaded != null ? new InferBudget(loaded.Model, loaded.Device, HostMemory.Budget()) : null;
        foreach (var f in files)
        {
            float[] img;
            int h, w;
            try
            {
                // an image too large to decode within the host memory budget is skipped (code 1)
                if (budget != null && Identify(f) is var (ih, iw) && !budget.CanDecode(ih, iw))
                    throw new DataFileException(f, $"{ih}x{iw} pixels is too large to decode within the host memory budget ({budget.Describe(ih, iw)})");
                img = ImageIo.LoadRgb(f, out h, out w);
            }
            catch (DataFileException e)
            {
                bad.Add(e.Message);
                Console.Error.WriteLine($"skipped {e.Message}");
                continue;
            }
            // one that the network cannot process within the memory budget is downscaled until it can
            (int, int)? fit = budget != null ? budget.Fit(h, w) : (h, w);
            if (fit is not var (fh, fw))
            {
                string why = $"{f}: {h}x{w} pixels {budget!.Describe(h, w)}, and even 32 pixels a side would not fit";
                bad.Add(why);
                Console.Error.WriteLine($"skipped {why}");
                continue;
            }
            if ((fh, fw) != (h, w))
            {
                Console.Error.WriteLine($"{f}: {h}x{w} pixels {budget!.Describe(h, w)}: predicting at {fh}x{fw} (downscaled; CCR_MEMORY_LIMIT_MB sets the budget)");
                img = InferBudget.Downscale(img, h, w, fh, fw);
                (h, w) = (fh, fw);
            }
            if (runner?.FixedSize is var (_, eh, ew) && (eh != h || ew != w))
                throw new UsageException($"infer: {onnx} takes {eh}x{ew} images only and {f} is {h}x{w}; export with --dynamic for any size");
            List<(string Task, object Prediction)> preds;
            try { preds = loaded != null ? Inference.Predict(loaded.Model, loaded.Device, img, h, w) : Inference.PredictOnnx(runner!, img, h, w); }
            catch (OutOfMemoryException e)
            {
                throw new OutOfMemoryException($"{e.Message} (image {f}, {h}x{w}); try smaller images" +
                    (loaded?.Device.IsCuda == true ? " or --device cpu" : ""), e);
            }
            var tiles = new List<byte[]> { Visualize.Image(img, h, w) };
            foreach (var (task, p) in preds) tiles.Add(Visualize.Colour(task, p, h, w, depthMax));
            var pic = Visualize.SideBySide(tiles, h, w, out int width);
            Directory.CreateDirectory(outDir);
            string dst = Path.Combine(outDir, Path.GetFileNameWithoutExtension(f) + ".png");
            ImageIo.SaveRgb(dst, pic, h, width);
            written++;
            Console.WriteLine($"{dst}: input, {string.Join(", ", preds.Select(p => p.Task))}");
        }
        if (bad.Count == 0) return ExitCodes.Ok;
        Console.Error.WriteLine($"infer: {bad.Count} of {files.Count} images could not be read and were skipped " +
            $"({written} written to {outDir}); first: {bad[0]}");
        return ExitCodes.DataError;
    }

    /// <summary>An image's (height, width) from its header, or null (the decoder then names the problem).</summary>
    static (int H, int W)? Identify(string path)
    {
        try
        {
            var info = SixLabors.ImageSharp.Image.Identify(path);
            return info == null ? null : (info.Height, info.Width);
        }
        catch (Exception e) when (e is IOException or SixLabors.ImageSharp.ImageFormatException or NotSupportedException)
        {
            return null;
        }
    }
}
