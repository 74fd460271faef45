using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>A steady-state CCR step (labels prepared from the batch's device tensors, anchors,
/// mining, loss, backward) makes no host copy and takes no new device memory: what a captured
/// CUDA graph needs. Checked on both variants.</summary>
public class CcrStepTests
{
    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void SteadyStateStepHasNoHostCopiesAndNoNewDeviceMemory(string dev)
    {
        var d = Devices.Get(dev);
        // one anchor per image on the CUDA variant (its barriers are slow on the CPU accelerator), three on the CPU one
        var cfg = new CcrConfig { Sharing = ProjectorSharing.None, TopK = 4, NumNegatives = 3, Gamma = dev == "cpu" ? 0.1f : 0.05f };
        var ccr = new CcrLoss(d, new Rng(3), cfg, [("semseg", 4), ("depth", 4)]);
        var r = Rand.New(4);
        // the batch's tensors: features (N, C, 5, 6), int semseg labels and float depth at 10x12
        var feats = new[] { "semseg", "depth" }.ToDictionary(t => t, _ =>
        {
            var f = Tensor.FromArray(d, Rand.Floats(r, 2 * 4 * 30), 2, 4, 5, 6);
            f.RequiresGrad = true;
            return f;
        });
        var sem = Tensor.FromArray(d, Rand.Ints(r, 2 * 120, 3), 2, 10, 12);
        var dep = Tensor.FromArray(d, Rand.Floats(r, 2 * 120, 0.5f, 4f), 2, 1, 10, 12);
        long copies = 0;
        void Step()
        {
            // the host's part, before the step: the pairs, and lambda's upload (the trainer's one upload of the step's scalars)
            var pairs = ccr.NextPairs(["semseg", "depth"]);
            ccr.SetLambda(100);
            ccr.Scalars.Upload();
            copies = HostCopies.Total;
            using var scope = new TensorScope();
            using var ls = TaskLabels.FromDevice("semseg", sem);
            using var ld = TaskLabels.FromDevice("depth", dep);
            var (loss, _) = ccr.Forward(feats, new Dictionary<string, TaskLabels> { ["semseg"] = ls, ["depth"] = ld }, pairs, 100);
            loss.Backward();
        }
        Step(); Step(); // warm-up: kernels loaded, gradients allocated, pool filled
        long held = d.Pool.BytesInUse + d.Pool.BytesCached, allocations = d.Pool.Allocations;
        Step();
        Assert.Equal(copies, HostCopies.Total);
        Assert.Equal(held, d.Pool.BytesInUse + d.Pool.BytesCached);
        Assert.Equal(allocations, d.Pool.Allocations);
        Assert.Equal(6, ccr.Counter.ToIntArray()[0]); // three steps of two pairs, counted on the device
        Assert.Contains(feats["depth"].Grad!.ToArray(), g => g != 0);
        foreach (var f in feats.Values) { f.Grad?.Dispose(); f.Dispose(); }
        sem.Dispose(); dep.Dispose();
        ccr.DisposeTensors();
    }
}
