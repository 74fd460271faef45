using Ccr.Train.Commands;
using Ccr.Nn;
using Ccr.Train.Cli;
using Ccr.Training.Config;
using Ccr.Training;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>The trainer end to end on a tiny SynthRooms set: resumption and the config contract.</summary>
public class TrainerTests
{
    static TrainConfig Tiny(string dataDir, params string[] more) => ConfigLoader.Load("synth-cpu",
    [
        "data.path=" + dataDir, "data.train_size=12", "data.val_size=3", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1",
        "train.batch_size=3", "train.epochs=2", "train.eval_every=0", "train.log_every=1",
        "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", .. more,
    ]);

    static List<float> Train(TrainConfig cfg, string runDir, bool resume)
    {
        using var session = new TrainSession(cfg, Devices.Cpu);
        var trainer = new Trainer(session, runDir, _ => { }) { RecordStepLosses = true };
        if (resume) trainer.Resume();
        trainer.Run();
        return trainer.StepLosses;
    }

    [Fact]
    public void ResumedRunRepeatsTheUninterruptedLosses()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            string data = Path.Combine(root, "data");
            var full = Train(Tiny(data), Path.Combine(root, "full"), resume: false);
            Assert.Equal(8, full.Count); // 2 epochs of 4 batches

            string split = Path.Combine(root, "split");
            var first = Train(Tiny(data, "train.max_steps=3"), split, resume: false);
            Assert.Equal(3, first.Count);
            Assert.True(File.Exists(Path.Combine(split, "last.ckpt")));
            var rest = Train(Tiny(data), split, resume: true);
            Assert.Equal(5, rest.Count);

            Assert.Equal(full.Take(3), first);       // same start
            Assert.Equal(full.Skip(3), rest);        // bit for bit after resuming
            Assert.True(File.Exists(Path.Combine(split, "eval.json")));
            var csv = File.ReadAllLines(Path.Combine(split, "metrics.csv"));
            Assert.Equal(9, csv.Length); // header + one row per step, no duplicates after resuming
            Assert.Contains("loss_semseg", csv[0]);
            Assert.Contains("ccr", csv[0]);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void EvalPredictionsScoreTheSameAndInferWritesPictures()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-eval-" + Guid.NewGuid().ToString("N"));
        try
        {
            string data = Path.Combine(root, "data"), run = Path.Combine(root, "run");
            Train(Tiny(data, "train.max_steps=2", "device=cpu"), run, resume: false);
            string ckpt = Path.Combine(run, "last.ckpt");
            string ev = Path.Combine(root, "eval");
            Assert.Equal(0, EvalCommand.Run(["--checkpoint", ckpt, "--out", ev, "--save-predictions"]));
            var evalJson = EvalFiles.Read(Path.Combine(ev, "eval.json"));

            // score reads the saved prediction files back: class maps and depth are stored exactly
            string synth = Directory.GetDirectories(data).Single();
            string scored = Path.Combine(root, "scored.json");
            Assert.Equal(0, ScoreCommand.Run(["--data", "synth:" + synth, "--predictions",
                Path.Combine(ev, "predictions"), "--tasks", "semseg,depth", "--out", scored]));
            var s = EvalFiles.Read(scored);
            Assert.Equal(evalJson["semseg"]["mIoU"], s["semseg"]["mIoU"], 9);
            Assert.Equal(evalJson["depth"]["rmse"], s["depth"]["rmse"], 5);

            string pics = Path.Combine(root, "pics");
            Assert.Equal(0, InferCommand.Run(["--checkpoint", ckpt, "--images", Path.Combine(synth, "images"), "--out", pics]));
            var png = Directory.GetFiles(pics, "*.png").Order().ToArray();
            Assert.NotEmpty(png);
            using var img = SixLabors.ImageSharp.Image.Load(png[0]);
            Assert.Equal(32, img.Height);
            Assert.Equal(4 * 32 + 3 * 4, img.Width); // input + semseg, depth, normals with 4-pixel gaps
            // the first tile is the input image itself, and no tile is blank
            var pic = img.CloneAs<SixLabors.ImageSharp.PixelFormats.Rgb24>();
            using var src = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(
                Path.Combine(synth, "images", Path.GetFileNameWithoutExtension(png.Order().First()) + ".png"));
            for (int y = 0; y < 32; y += 7)
                for (int x = 0; x < 32; x += 5)
                {
                    var a = pic[x, y]; var b = src[x, y];
                    Assert.True(Math.Abs(a.R - b.R) <= 1 && Math.Abs(a.G - b.G) <= 1 && Math.Abs(a.B - b.B) <= 1, $"input tile differs at ({x}, {y})");
                }
            for (int t = 0; t < 4; t++)
            {
                var colours = new HashSet<SixLabors.ImageSharp.PixelFormats.Rgb24>();
                for (int y = 0; y < 32; y++) for (int x = 0; x < 32; x++) colours.Add(pic[t * 36 + x, y]);
                Assert.True(colours.Count > 1 || colours.Single() != default, $"tile {t} is blank");
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void AblateWritesTables1And3AndReusesFinishedRuns()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-ablate-" + Guid.NewGuid().ToString("N"));
        try
        {
            var sets = new List<string>
            {
                "data.path=" + Path.Combine(root, "data"), "data.train_size=6", "data.val_size=2", "data.height=32",
                "data.width=32", "data.crop_height=32", "data.crop_width=32", "data.workers=1", "train.batch_size=3",
                "train.epochs=1", "train.eval_every=0", "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8",
                "tasks=[semseg,depth]", "device=cpu", "data.test_size=2",
            };
            var args = new List<string> { "--out", Path.Combine(root, "ablate"), "--tables", "table1,table3", "--seeds", "2", "--split", "test" };
            foreach (var s in sets) { args.Add("--set"); args.Add(s); }
            Assert.Equal(0, AblateCommand.Run(args.ToArray()));
            string md = File.ReadAllText(Path.Combine(root, "ablate", "ablation.md"));
            foreach (var row in new[] { "Table 1", "Table 3", "ST baseline", "MT baseline", "CCR-Basic", "+ Proj + SS + CTS", "CCR, unshared", "CCR, Tt-shared", "CCR, Ts-shared", "scored on the test split" })
                Assert.Contains(row, md);
            Assert.Contains(" ± ", md);
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "ablate", "ablation.json")));
            var t1 = json.RootElement.GetProperty("table1");
            Assert.Equal(6, t1.GetArrayLength()); // one ST row + MT baseline + four CCR variants
            Assert.Equal(System.Text.Json.JsonValueKind.Number, t1[1].GetProperty("delta_m").ValueKind);
            Assert.Equal(2, t1[2].GetProperty("delta_m_vs_mt_baseline").GetProperty("n").GetInt32());
            Assert.Equal(2, t1[2].GetProperty("per_seed").EnumerateObject().Count());
            Assert.Equal(5, json.RootElement.GetProperty("table3").GetArrayLength());
            // every run trained with its own seed over the same data set, scored on test
            string run0 = Path.Combine(root, "ablate", "mt_baseline", "seed0"), run1 = Path.Combine(root, "ablate", "mt_baseline", "seed1");
            foreach (var run in new[] { run0, run1 })
            {
                Assert.True(File.Exists(Path.Combine(run, "eval-test.json")));
                var cfg = ConfigLoader.Load(Path.Combine(run, "config.yaml"), []);
                Assert.Equal(0, cfg.Data.Seed);
            }
            Assert.Equal(1, ConfigLoader.Load(Path.Combine(run1, "config.yaml"), []).Seed);
            Assert.Single(Directory.GetDirectories(Path.Combine(root, "data"))); // one data set for both seeds
            Assert.NotEqual(File.ReadAllText(Path.Combine(run0, "eval-test.json")), File.ReadAllText(Path.Combine(run1, "eval-test.json")));
            // Figures 1 / 5: baseline against CCR pair distances, with the bin counts beside the picture
            Assert.True(File.Exists(Path.Combine(root, "ablate", "figure_distances_semseg_depth.png")));
            Assert.True(File.Exists(Path.Combine(root, "ablate", "figure_distances_semseg_depth.csv")));
            Assert.True(File.Exists(Path.Combine(run0, "plots", "losses.png")));
            // where CCR acts: every CCR run probed, the MT baseline not
            Assert.Contains("Where CCR acts", md);
            Assert.Contains("semseg ← depth", md);
            Assert.True(File.Exists(Path.Combine(root, "ablate", "ccr_full", "seed1", "ccr_probe.json")));
            Assert.False(File.Exists(Path.Combine(run0, "ccr_probe.json")));
            Assert.Equal(2, json.RootElement.GetProperty("ccr_probe").GetProperty("share_both").GetArrayLength());
            var time = json.RootElement.GetProperty("run_seconds").GetProperty("ccr_full/seed1");
            Assert.True(time.GetProperty("wall_s").GetDouble() > 0 && time.GetProperty("cpu_s").GetDouble() > 0);

            // a second call finds every result and trains nothing
            var stamp = File.GetLastWriteTimeUtc(Path.Combine(run0, "eval-test.json"));
            Assert.Equal(0, AblateCommand.Run([.. args, "--rows", "ccr_full"]));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(run0, "eval-test.json")));
            // --rows keeps the baselines and the rows named
            using var only = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "ablate", "ablation.json")));
            Assert.Equal(["st_baseline", "mt_baseline", "ccr_full"], only.RootElement.GetProperty("table1").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
            Assert.Throws<UsageException>(() => AblateCommand.Run([.. args, "--rows", "ccr_nope"]));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void DivergingRunStopsNamingTheStepAndKeepsTheLastGoodCheckpoint()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-nan-" + Guid.NewGuid().ToString("N"));
        try
        {
            // one good epoch at a sane rate, then a rate that overflows the weights
            string run = Path.Combine(root, "run");
            Train(Tiny(Path.Combine(root, "data"), "train.epochs=1"), run, resume: false);
            string ckpt = Path.Combine(run, "last.ckpt");
            var good = File.ReadAllBytes(ckpt);
            var e = Assert.Throws<NonFiniteException>(() =>
                Train(Tiny(Path.Combine(root, "data"), "train.epochs=3", "train.lr=1e30", "train.schedule=constant", "train.warmup_epochs=0"), run, resume: true));
            Assert.Matches(@"became non-finite at step \d+", e.Message);
            Assert.Contains("training diverged", e.Message);
            Assert.Contains("last.ckpt (step 4)", e.Message);
            Assert.Equal(good, File.ReadAllBytes(ckpt)); // the checkpoint of the good epoch is untouched
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void UnknownConfigKeysAreErrorsThatListTheValidOnes()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["train.learning_rate=0.1"]));
        Assert.Contains("unknown key 'train.learning_rate'", e.Message);
        Assert.Contains("train.lr", e.Message);
        var e2 = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", ["train.lr=fast"]));
        Assert.Contains("train.lr", e2.Message);
        var cfg = ConfigLoader.Load("synth-cpu", ["train.lr=0.01", "tasks=[semseg,depth]"]);
        Assert.Equal(0.01f, cfg.Train.Lr);
        Assert.Equal(["semseg", "depth"], cfg.Tasks);
        // the resolved config round-trips through YAML
        string path = Path.GetTempFileName();
        File.WriteAllText(path, ConfigLoader.ToYaml(cfg));
        var back = ConfigLoader.Load(path, []);
        File.Delete(path);
        Assert.Equal(ConfigLoader.ToYaml(cfg), ConfigLoader.ToYaml(back));
    }
}
