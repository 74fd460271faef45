using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Ccr.Training.Config;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>The probe of where CCR acts: its per-term gradients add up to the training loss's
/// gradient, each term reaches only the parameters it depends on, and the per-pair mining shares are
/// consistent.</summary>
public class CcrProbeTests
{
    static TrainConfig Tiny(string dataDir) => ConfigLoader.Load("synth-cpu",
    [
        "data.path=" + dataDir, "data.train_size=6", "data.val_size=2", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1", "train.batch_size=3",
        "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", "ccr.min_anchors=20", "device=cpu",
    ]);

    [Fact]
    public void TermGradientsAddUpToTheTrainingLossGradient()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cfg = Tiny(Path.Combine(root, "data"));
            using var s = new TrainSession(cfg, Devices.Cpu);
            var batch = s.Loader.MakeBatch(0, 0);
            var rng = s.CcrLoss!.SamplingRng;
            var counter = s.CcrLoss.Counter.ToIntArray();
            // the same pairs (host generator) and anchors (device counter) for every forward pass
            Rng Fresh() { s.CcrLoss.Counter.IntData.CopyFrom(counter); return new(rng.State, rng.Inc, raw: true); }

            // the training loss as the trainer builds it, lambda fully ramped up
            float[] whole;
            using (var scope = new TensorScope())
            {
                s.CcrLoss.SamplingRng = Fresh();
                var db = DeviceBatch.Create(s.Device, batch, cfg.Tasks, s.Info, forCcr: true);
                var outputs = s.Model.Forward(db.Images);
                var losses = cfg.Tasks.Select(t => TaskHeads.Loss(t, outputs[t].Prediction, db, s.Info.EdgePosWeight)).ToList();
                var weights = cfg.Tasks.Select(t => cfg.LossWeights[t]).ToList();
                losses.Add(s.CcrLoss.Forward(outputs.ToDictionary(o => o.Key, o => o.Value.Features), db.CcrLabels, 1e9).Loss);
                weights.Add(1f);
                s.Arena.ZeroGrad();
                F.WeightedSum(losses, weights.ToArray()).Backward();
                whole = s.Arena.Grads.ToArray();
                db.DisposeCcrLabels();
            }
            var sum = new double[whole.Length];
            var names = s.Root.NamedParameters().Select(p => p.Name).ToList();
            foreach (var term in cfg.Tasks.Append("ccr"))
            {
                s.CcrLoss.SamplingRng = Fresh();
                var g = CcrProbe.Gradient(s, batch, term, out double value);
                Assert.True(double.IsFinite(value) && value > 0, $"{term} loss {value}");
                for (int i = 0; i < g.Length; i++) sum[i] += g[i];
                // a term reaches only what it depends on: no task loss touches a projector, no task another task's decoder
                for (int p = 0; p < names.Count; p++)
                {
                    string grp = CcrProbe.Group(names[p]);
                    bool reachable = grp == "backbone" || grp == "decoder:" + term || term == "ccr" && grp != "other";
                    long start = s.Arena.Offsets[p], end = p + 1 < names.Count ? s.Arena.Offsets[p + 1] : s.Arena.Count;
                    if (!reachable)
                        for (long k = start; k < end; k++) Assert.True(g[k] == 0, $"{term} reaches {names[p]}");
                }
            }
            // float32 backward passes sum shared paths in another order: compare the vectors as a whole
            // (a wrong weight, e.g. normals without its x10, is an error of the gradient's own size)
            double diff = 0, norm = 0;
            for (int i = 0; i < sum.Length; i++) { diff += (sum[i] - whole[i]) * (sum[i] - whole[i]); norm += (double)whole[i] * whole[i]; }
            Assert.True(norm > 0);
            Assert.True(Math.Sqrt(diff / norm) < 1e-3, $"relative L2 difference {Math.Sqrt(diff / norm):G3}");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void MeasureReportsEveryOrderedPairAndEveryTerm()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cfg = Tiny(Path.Combine(root, "data"));
            using var s = new TrainSession(cfg, Devices.Cpu);
            var r = CcrProbe.Measure(s, batches: 2);
            Assert.Equal(2, r.Batches);
            Assert.Equal(6, r.Pairs.Count); // 3 tasks: every ordered pair
            foreach (var p in r.Pairs)
            {
                Assert.InRange(p.AnchorsPerImage, 1, 20); // the floor, or fewer valid pixels
                Assert.InRange(p.WithPositive, 0, 1);
                Assert.InRange(p.WithTriplet, 0, p.WithPositive + 1e-12);
                Assert.InRange(p.ActiveTriplets, 0, 1);
            }
            Assert.Equal(["semseg", "depth", "normals", "ccr"], r.GradNorms.Keys);
            Assert.All(r.GradNorms.Values, g => Assert.True(g["backbone"] > 0));
            Assert.Equal(0, r.GradNorms["semseg"]["projectors"]);
            Assert.True(r.GradNorms["ccr"]["projectors"] > 0);
            Assert.InRange(r.BackboneCosine, -1, 1);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
