using System.Text.Json;
using Ccr.Tests.Data;
using Ccr.Train.Commands;
using Ccr.Training.Data;
using Ccr.Training.Metrics;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace Ccr.Tests.Metrics;

/// <summary>
/// `score` on what Multi-Task-Learning-PyTorch saves (data/fixtures/pascal-mix-pred: no parts PNG
/// where the label is all ignore, palette PNGs of another palette; nyud-mtl-pred: depth .mat),
/// against the reference evaluations computed by tools/golden_pascal_labels.py.
/// </summary>
public class ScoreReferenceTests
{
    static JsonElement Ex => PascalReferenceLabelTests.Expected();
    static double E(string key) => Ex.GetProperty(key).GetDouble();
    static Dictionary<string, double> Task(Dictionary<string, object> r, string t) => (Dictionary<string, double>)r[t];

    [Fact]
    public void MtlPredictionsOfPascalScoreAsTheReferenceEvaluations()
    {
        var r = ScoreCommand.Score("pascal:" + PascalReferenceLabelTests.Root, TestData.DataFixture("pascal-mix-pred"), "val",
            null, null, BadSamplePolicy.Stop, out _);
        // parts PNGs exist only for the 2 annotated images; the other 3 are not scored (nor read)
        Assert.Equal(2, Directory.GetFiles(Path.Combine(TestData.DataFixture("pascal-mix-pred"), "human_parts")).Length);
        TestData.Close(E("human_parts_mIoU"), Task(r, "human_parts")["mIoU"], 1e-12, 0, "parts mIoU (eval_human_parts)");
        TestData.Close(E("semseg_mIoU"), Task(r, "semseg")["mIoU"], 1e-12, 0, "semseg mIoU (eval_semseg)");
        TestData.Close(E("sal_maxF_atrc"), Task(r, "sal")["maxF"], 1e-6, 0, "maxF (ATRC MaxF, beta^2 0.3, float32 in torch)");
        TestData.Close(E("sal_maxF_mtl"), Task(r, "sal")["maxF_mtl"], 1e-12, 0, "maxF_mtl (eval_sal)");
        TestData.Close(E("sal_mIoU_mtl"), Task(r, "sal")["mIoU_mtl"], 1e-12, 0, "mIoU_mtl (eval_sal)");
        // eval_normals' arccos of a float32 dot product is noisy near 0 degrees: ~0.01 degree
        Assert.True(E("normals_mean_without_mask") > 10, "the fixture separates the masked from the unmasked protocol");
        TestData.Close(E("normals_mean"), Task(r, "normals")["mean"], 0.02, 0, "normals mean (eval_normals, masked labels)");
    }

    [Fact]
    public void MtlSaliencyThresholdsAreNumpysLinspace()
    {
        var want = Ex.GetProperty("sal_thresholds_mtl").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(want, SaliencyMetric.MtlThresholds);
    }

    [Fact]
    public void MtlDepthMatFilesAreRead()
    {
        var r = ScoreCommand.Score("nyud:" + TestData.DataFixture("nyud"), TestData.DataFixture("nyud-mtl-pred"), "val",
            null, null, BadSamplePolicy.Stop, out _);
        Assert.Equal(["depth"], r.Keys);
        TestData.Close(E("nyud_depth_rmse"), Task(r, "depth")["rmse"], 0, 1e-6, "depth rmse (eval_depth on .mat)");
    }

    [Fact]
    public void PredictionsOfAnotherSizeNeedResizeAndThenMatchTorch()
    {
        string data = "pascal:" + PascalReferenceLabelTests.Root, pred = TestData.DataFixture("pascal-mix-pred-small");
        var e = Assert.Throws<DataFileException>(() => ScoreCommand.Score(data, pred, "val", null, null, BadSamplePolicy.Stop, out _));
        Assert.Contains("15x20", e.Message);
        Assert.Contains("--resize", e.Message);
        var r = ScoreCommand.Score(data, pred, "val", null, null, BadSamplePolicy.Stop, out _, resize: true);
        TestData.Close(E("resized_semseg_mIoU"), Task(r, "semseg")["mIoU"], 1e-12, 0, "nearest-resized semseg mIoU");
        // float32 (torch) vs float64 (ours) bilinear weights may flip a pixel at a threshold: 1 / 6000
        TestData.Close(E("resized_sal_maxF_atrc"), Task(r, "sal")["maxF"], 5e-4, 0, "bilinear-resized maxF");
        string outFile = Path.Combine(TestData.TempDir("score-resize"), "eval.json");
        Assert.Equal(1, ScoreCommand.Run(["--data", data, "--predictions", pred, "--out", outFile]));
        Assert.Equal(0, ScoreCommand.Run(["--data", data, "--predictions", pred, "--out", outFile, "--resize"]));
    }

    [Fact]
    public void BadDatasetKindIsAUsageError()
    {
        string pred = TestData.DataFixture("pascal-mix-pred");
        Assert.Equal(2, ScoreCommand.Run(["--data", "foo:" + PascalReferenceLabelTests.Root, "--predictions", pred]));
        Assert.Equal(2, ScoreCommand.Run(["--data", "pascal:", "--predictions", pred]));
        Assert.Equal(2, ScoreCommand.Run(["--data", PascalReferenceLabelTests.Root, "--predictions", pred]));
        Assert.Contains("--resize", ScoreCommand.Help);
    }

    [Fact]
    public void DeltaMIsReportedUnderBothSaliencyProtocols()
    {
        string dir = TestData.TempDir("score-dm");
        string data = "pascal:" + PascalReferenceLabelTests.Root, pred = TestData.DataFixture("pascal-mix-pred");
        var r = ScoreCommand.Score(data, pred, "val", [TaskNames.Saliency], null, BadSamplePolicy.Stop, out _);
        var sal = Task(r, "sal");
        string baseline = Path.Combine(dir, "single.json");
        ScoreCommand.Write(baseline, new Dictionary<string, object>
        {
            ["sal"] = new Dictionary<string, double> { ["maxF"] = sal["maxF"] / 2, ["mIoU_mtl"] = sal["mIoU_mtl"] * 2 },
        });
        var withBase = ScoreCommand.Score(data, pred, "val", [TaskNames.Saliency], baseline, BadSamplePolicy.Stop, out _);
        TestData.Close(100, (double)withBase["delta_m"], 1e-9, 0, "delta_m by maxF (ATRC / InvPT)");
        TestData.Close(-50, (double)withBase["delta_m_mtl"], 1e-9, 0, "delta_m_mtl by mIoU_mtl (MTL)");
    }

    [Theory]
    [InlineData(8, false)]
    [InlineData(4, true)]
    [InlineData(2, false)]
    [InlineData(1, true)]
    public void PalettePngsGiveRawIndicesWhateverThePalette(int bits, bool interlaced)
    {
        // ImageSharp writes a palette PNG of its own choosing; our raw indices looked up in the file's
        // PLTE must give ImageSharp's decoded colours at every pixel.
        int h = 13, w = 21, colours = 1 << Math.Min(bits, 4);
        var rng = new Random(bits * 10 + (interlaced ? 1 : 0));
        var palette = Enumerable.Range(0, colours).Select(_ => new Rgb24((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))).Distinct().ToArray();
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) img[x, y] = palette[rng.Next(palette.Length)];
        string path = Path.Combine(TestData.TempDir("palette"), "p.png");
        img.SaveAsPng(path, new PngEncoder
        {
            ColorType = PngColorType.Palette,
            BitDepth = (PngBitDepth)bits,
            InterlaceMethod = interlaced ? PngInterlaceMode.Adam7 : PngInterlaceMode.None,
        });
        var bytes = File.ReadAllBytes(path);
        Assert.True(PngPalette.IsPalettePng(bytes));
        var idx = PngPalette.ReadIndices(bytes, out int rh, out int rw, out var plte);
        Assert.Equal((h, w), (rh, rw));
        using var decoded = Image.Load<Rgb24>(path);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = idx[y * w + x];
                Assert.Equal(decoded[x, y], new Rgb24(plte[3 * i], plte[3 * i + 1], plte[3 * i + 2]));
            }
        Assert.Equal(idx, ImageIo.LoadLabel(path, out _, out _));
    }
}
