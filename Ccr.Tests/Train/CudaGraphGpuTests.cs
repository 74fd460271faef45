using Ccr.Kernels;
using Ccr.Training;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>
/// On a real GPU (skipped without one): the trainer's step captured as a CUDA graph and replayed
/// gives the same losses and parameters, bit for bit, as the same steps with plain launches. This
/// is the only test of the driver calls themselves (CudaGraph); StepGraphTests checks the rest of
/// the mechanism on the CPU accelerator.
/// </summary>
public class CudaGraphGpuTests
{
    [SkippableFact]
    public void CapturedAndReplayedStepsEqualPlainStepsOnTheGpu()
    {
        Skip.If(Devices.Gpu == null, "no CUDA device");
        var d = Devices.Gpu!;
        string root = Path.Combine(Path.GetTempPath(), "ccr-graph-gpu-" + Guid.NewGuid().ToString("N"));
        try
        {
            (List<float> Losses, float[] Params, List<StepMode> Modes, List<string> Said) Train(bool graph)
            {
                var cfg = SteadyStepTests.Tiny(root, $"train.cuda_graph={(graph ? "true" : "false")}");
                var said = new List<string>();
                using var s = new TrainSession(cfg, d);
                var t = new Trainer(s, Path.Combine(root, graph ? "graph" : "plain"), said.Add) { RecordStepLosses = true };
                var modes = new List<StepMode>();
                for (int k = 0; k < 6; k++)
                {
                    t.TrainStep(s.Loader.MakeBatch(0, k % 3), 0.25 * k, log: k == 4);
                    modes.Add(t.LastStepMode);
                }
                return (t.StepLosses, s.Arena.Values.ToArray(), modes, said);
            }
            var plain = Train(graph: false);
            var graphed = Train(graph: true);
            Assert.Empty(graphed.Said); // no capture failure
            Assert.All(plain.Modes, m => Assert.Equal(StepMode.Eager, m));
            Assert.Equal([StepMode.Eager, StepMode.Captured, StepMode.Replayed, StepMode.Replayed, StepMode.Eager, StepMode.Replayed], graphed.Modes);
            Assert.Equal(plain.Losses.Select(BitConverter.SingleToInt32Bits), graphed.Losses.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(plain.Params.Select(BitConverter.SingleToInt32Bits), graphed.Params.Select(BitConverter.SingleToInt32Bits));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
