using System.Text.Json;
using Ccr.Tests.Data;
using Ccr.Train.Commands;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Metrics;

/// <summary>`score` end to end: predictions equal to the labels score perfectly.</summary>
public class ScoreCommandTests
{
    private static void WriteLabelsAsPredictions(IDataset ds, string dir)
    {
        var w = new PredictionWriter(dir);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            foreach (string t in ds.Tasks)
            {
                object label = s.Label(t)!;
                // Saliency labels are 0/1 ints; predictions are probabilities.
                if (t == TaskNames.Saliency) label = s.Saliency!.Select(v => v == 1 ? 1f : 0f).ToArray();
                if (t == TaskNames.Edge) label = s.Edge!.Select(v => v == 1f ? 1f : 0f).ToArray();
                w.Write(t, s.Id, label, s.Height, s.Width);
            }
        }
    }

    private static JsonElement Eval(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;

    [Fact]
    public void SynthRoomsLabelsAsPredictionsScorePerfectly()
    {
        string data = TestData.TempDir("score-synth");
        string dir = SynthRooms.EnsureCached(data, 48, 64, seed: 2, train: 0, val: 24);
        var ds = SynthRooms.Open(dir, "val");
        // mIoU counts absent classes as 0, so the set must show every class and part.
        var seen = new HashSet<int>();
        var parts = new HashSet<int>();
        for (int i = 0; i < ds.Count; i++) { seen.UnionWith(ds.Get(i).Semseg!); parts.UnionWith(ds.Get(i).Parts!); }
        Assert.Equal(SynthClasses.Count, seen.Count);
        Assert.Equal(SynthClasses.PartsCount, parts.Count);

        string pred = Path.Combine(data, "pred");
        WriteLabelsAsPredictions(ds, pred);
        string outFile = Path.Combine(data, "eval.json");
        Assert.Equal(0, ScoreCommand.Run(["--data", "synth:" + dir, "--predictions", pred, "--out", outFile]));
        var e = Eval(outFile);
        Assert.Equal(1, e.GetProperty("semseg").GetProperty("mIoU").GetDouble(), 12);
        Assert.Equal(1, e.GetProperty("semseg").GetProperty("pixAcc").GetDouble(), 12);
        Assert.Equal(1, e.GetProperty("human_parts").GetProperty("mIoU").GetDouble(), 12);
        Assert.Equal(0, e.GetProperty("depth").GetProperty("rmse").GetDouble());
        // Normals PNGs hold 8 bits per component: about 0.2 degrees of quantisation.
        Assert.InRange(e.GetProperty("normals").GetProperty("mean").GetDouble(), 0, 0.5);
        Assert.Equal(1, e.GetProperty("sal").GetProperty("maxF").GetDouble(), 12);
        Assert.Equal(1, e.GetProperty("edge").GetProperty("odsF").GetDouble(), 12);
        Assert.False(e.TryGetProperty("delta_m", out _));

        // Lossless normals (.npy) score exactly 0 degrees: against the PNG run as baseline, delta_m = +100 %.
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Get(i);
            int n = s.Pixels;
            var hwc = new float[3 * n];
            for (int k = 0; k < n; k++) for (int c = 0; c < 3; c++) hwc[3 * k + c] = s.Normals![c * n + k];
            Npy.WriteFloat32(Path.Combine(pred, "normals", s.Id + ".npy"), hwc, s.Height, s.Width, 3);
        }
        string out2 = Path.Combine(data, "eval2.json");
        Assert.Equal(0, ScoreCommand.Run(["--data", "synth:" + dir, "--predictions", pred, "--tasks", "normals",
            "--baseline", outFile, "--out", out2]));
        var e2 = Eval(out2);
        Assert.Equal(0, e2.GetProperty("normals").GetProperty("mean").GetDouble());
        Assert.False(e2.TryGetProperty("semseg", out _));
        double dm = e2.GetProperty("delta_m").GetDouble();
        TestData.Close(100, dm, 1e-9, 0, "normals error 0 against the PNG baseline: a 100 % gain");
    }

    [Fact]
    public void NyudAndPascalFixturesScorePerfectly()
    {
        string nyPred = TestData.TempDir("score-nyud");
        var ny = new NyudDataset(TestData.DataFixture("nyud"), "val", [TaskNames.Depth, TaskNames.Edge, TaskNames.Semseg]);
        WriteLabelsAsPredictions(ny, nyPred);
        var r = ScoreCommand.Score("nyud:" + TestData.DataFixture("nyud"), nyPred, "val", null, null, BadSamplePolicy.Stop, out _);
        Assert.Equal(0, ((Dictionary<string, double>)r["depth"])["rmse"]);
        Assert.Equal(1, ((Dictionary<string, double>)r["edge"])["odsF"], 12);
        Assert.Equal(1, ((Dictionary<string, double>)r["semseg"])["pixAcc"], 12);

        string paPred = TestData.TempDir("score-pascal");
        var pa = new PascalDataset(TestData.DataFixture("pascal"), "val", [TaskNames.Saliency, TaskNames.Edge]);
        WriteLabelsAsPredictions(pa, paPred);
        var rp = ScoreCommand.Score("pascal:" + TestData.DataFixture("pascal"), paPred, "val", null, null, BadSamplePolicy.Stop, out _);
        Assert.Equal(1, ((Dictionary<string, double>)rp["sal"])["maxF"], 12);
        Assert.Equal(1, ((Dictionary<string, double>)rp["edge"])["odsF"], 12);
    }

    [Fact]
    public void BadPredictionsAndUsageAreReported()
    {
        string pred = TestData.TempDir("score-bad");
        ImageIo.SaveGray(Path.Combine(pred, "semseg", "0001.png"), new byte[10 * 10], 10, 10);
        var e = Assert.Throws<DataFileException>(() => ScoreCommand.Score("nyud:" + TestData.DataFixture("nyud"), pred, "val",
            [TaskNames.Semseg], null, BadSamplePolicy.Stop, out _));
        Assert.Contains(Path.Combine(pred, "semseg", "0001.png"), e.Message);
        Assert.Contains("original size", e.Message);
        var missing = Assert.Throws<DataFileException>(() => ScoreCommand.Score("nyud:" + TestData.DataFixture("nyud"), pred, "train",
            [TaskNames.Depth], null, BadSamplePolicy.Stop, out _));
        Assert.Contains(Path.Combine(pred, "depth", "0001.npy"), missing.Message);
        Assert.Equal(2, ScoreCommand.Run(["--predictions", pred]));
        Assert.Equal(0, ScoreCommand.Run(["--help"]));
        Assert.Contains("--baseline", ScoreCommand.Help);
    }
}
