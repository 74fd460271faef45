using Ccr.Train.Commands;
using Ccr.Training.Config;
using Ccr.Training.Data;
using Ccr.Training;
using Ccr.Tests.Common;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace Ccr.Tests.Export;

/// <summary>What a user does: train, <c>export</c> the checkpoint, and <c>infer --onnx</c> beside
/// <c>infer --checkpoint</c> on the same images (one of an odd size).</summary>
public class OnnxCliTests
{
    static int Quiet(string[] args)
    {
        var old = Console.Out;
        Console.SetOut(TextWriter.Null);
        try { return Entry.Run(args); }
        finally { Console.SetOut(old); }
    }

    [Fact]
    public void ExportHelpListsEveryOption()
    {
        var old = Console.Out;
        var sw = new StringWriter();
        Console.SetOut(sw);
        try { Assert.Equal(0, ExportCommand.Run(["--help"])); }
        finally { Console.SetOut(old); }
        foreach (var o in ExportCommand.Options)
        {
            Assert.Contains("--" + o.Name, sw.ToString());
            Assert.Contains(o.Help, sw.ToString());
        }
        Assert.Contains("semseg_logits", sw.ToString());
    }

    [Fact]
    public void ExportedCheckpointPredictsTheSamePicturesUnderOnnxRuntime()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-onnx-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cfg = ConfigLoader.Load("synth-cpu",
            [
                "data.path=" + Path.Combine(root, "data"), "data.train_size=6", "data.val_size=2", "data.height=32", "data.width=32",
                "data.crop_height=32", "data.crop_width=32", "data.workers=1", "train.batch_size=3", "train.epochs=1",
                "train.eval_every=0", "train.log_every=1", "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", "device=cpu",
            ]);
            string run = Path.Combine(root, "run"), images = Path.Combine(root, "images");
            using (var s = new TrainSession(cfg, Devices.Cpu))
            {
                new Trainer(s, run, _ => { }).Run();
                for (int i = 0; i < 2; i++)
                {
                    var sample = s.ValSet.Get(i);
                    ImageIo.SaveRgbPlanar(Path.Combine(images, $"full{i}.png"), sample.Image, 32, 32);
                }
                var odd = s.ValSet.Get(0).Image; // a 27x31 crop
                var crop = new float[3 * 27 * 31];
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < 27; y++) Array.Copy(odd, (c * 32 + y) * 32, crop, (c * 27 + y) * 31, 31);
                ImageIo.SaveRgbPlanar(Path.Combine(images, "odd.png"), crop, 27, 31);
            }
            string ckpt = Path.Combine(run, "last.ckpt"), onnx = Path.Combine(root, "model.onnx");
            Assert.Equal(0, Quiet(["export", "--checkpoint", ckpt, "--out", onnx, "--dynamic", "--device", "cpu"])); // includes its own ORT check
            Assert.Equal(0, Quiet(["infer", "--checkpoint", ckpt, "--images", images, "--out", Path.Combine(root, "ours"), "--device", "cpu"]));
            Assert.Equal(0, Quiet(["infer", "--onnx", onnx, "--images", images, "--out", Path.Combine(root, "ort")]));
            foreach (var name in new[] { "full0.png", "full1.png", "odd.png" })
            {
                using var a = Image.Load<Rgb24>(Path.Combine(root, "ours", name));
                using var b = Image.Load<Rgb24>(Path.Combine(root, "ort", name));
                Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
                int differ = 0, maxDiff = 0;
                for (int y = 0; y < a.Height; y++)
                    for (int x = 0; x < a.Width; x++)
                    {
                        var p = a[x, y]; var q = b[x, y];
                        int d = Math.Max(Math.Abs(p.R - q.R), Math.Max(Math.Abs(p.G - q.G), Math.Abs(p.B - q.B)));
                        if (d > 1) differ++; // colour maps round: one level apart is the same prediction
                        maxDiff = Math.Max(maxDiff, d);
                    }
                // a class whose two logits tie within float32 noise may flip a pixel of the segmentation
                Assert.True(differ <= a.Width * a.Height / 1000, $"{name}: {differ} pixels differ (max {maxDiff} levels)");
            }

            // a fixed-size export: the size is recorded, and another image size is a usage error naming both
            string fixedOnnx = Path.Combine(root, "fixed.onnx");
            Assert.Equal(0, Quiet(["export", "--checkpoint", ckpt, "--out", fixedOnnx, "--tasks", "depth", "--device", "cpu"]));
            using (var r = new Ccr.Training.Export.OnnxRunner(fixedOnnx))
            {
                Assert.Equal((1, 32, 32), r.FixedSize);
                Assert.Equal(["depth"], r.Tasks);
            }
            var err = new StringWriter();
            var oldErr = Console.Error;
            Console.SetError(err);
            try { Assert.Equal(ExitCodes.Usage, Quiet(["infer", "--onnx", fixedOnnx, "--images", images, "--out", Path.Combine(root, "f")])); }
            finally { Console.SetError(oldErr); }
            Assert.Contains("--dynamic", err.ToString());
            Assert.Equal(ExitCodes.Usage, Quiet(["export", "--checkpoint", ckpt, "--tasks", "edge", "--out", Path.Combine(root, "x.onnx")]));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
