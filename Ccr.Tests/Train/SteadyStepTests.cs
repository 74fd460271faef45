using Ccr.Kernels;
using Ccr.Training.Config;
using Ccr.Training;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>
/// The trainer's steady-state step (Trainer.TrainStep, as the training loop calls it) makes no host
/// round trip and takes no new device memory, and repeats itself exactly: the same kernels with the
/// same arguments on the same pool blocks, the same rentals in the same order, step after step,
/// across a logging step. What a CUDA graph of the step assumes. Here on the CPU variant with the
/// trainer's model (the CUDA variant of a whole HRNet step takes a minute on the CPU accelerator;
/// StepGraphTests runs a step of the same pieces on it, captured and replayed).
/// </summary>
public class SteadyStepTests
{
    public static TrainConfig Tiny(string root, params string[] more) => ConfigLoader.Load("synth-cpu",
    [
        "data.path=" + Path.Combine(root, "data"), "data.train_size=6", "data.val_size=2", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1", "tasks=[semseg,depth,sal]",
        "train.batch_size=2", "train.epochs=1", "train.eval_every=0", "train.log_every=1000",
        "ccr.top_k=4", "ccr.proj_dim=8", "ccr.negatives=2", "ccr.gamma=0.02", "ccr.pair_selection=all", "model.head_channels=8",
        .. more,
    ]);

    [Fact]
    public void SteadyStepsCopyOnlyTheBatchAndScalarsAndRepeatTheirLaunchesAndBlocks()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-steady-" + Guid.NewGuid().ToString("N"));
        try
        {
            var d = Devices.Cpu;
            using var s = new TrainSession(Tiny(root), d);
            var t = new Trainer(s, Path.Combine(root, "run"), _ => { });
            var batches = new[] { s.Loader.MakeBatch(0, 0), s.Loader.MakeBatch(0, 1), s.Loader.MakeBatch(0, 2) };
            t.TrainStep(batches[0], 0.1, log: false); // warm-up: kernels, pool, staging buffers
            var recordings = new List<LaunchLog.Recording>();
            for (int k = 0; k < 4; k++)
            {
                bool log = k == 2; // a logging step in between reads values back and must not disturb the next
                long copies = HostCopies.Total, allocations = d.Pool.Allocations, inUse = d.Pool.BytesInUse;
                using (var rec = d.Launches.Record())
                {
                    var row = t.TrainStep(batches[k % 3], 0.2 + 0.1 * k, log);
                    Assert.Equal(log, row != null);
                    if (!log) recordings.Add(rec);
                }
                // the host copies of a step: one, the batch (images and 3 tasks' labels) and the step's
                // scalars together (StepUpload), before the step's device work, which forbids copies
                if (!log) Assert.Equal(1, HostCopies.Total - copies);
                Assert.Equal(allocations, d.Pool.Allocations); // no new device memory
                Assert.Equal(inUse, d.Pool.BytesInUse);        // everything the step rented is back
                Assert.Equal(StepMode.Eager, t.LastStepMode);  // the CPU has no graphs
            }
            Assert.True(recordings[0].Rents.Count > 100, $"{recordings[0].Rents.Count} rentals");
            foreach (var r in recordings.Skip(1))
            {
                Assert.Equal(recordings[0].Launches, r.Launches);
                Assert.Equal(recordings[0].Rents, r.Rents);
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
