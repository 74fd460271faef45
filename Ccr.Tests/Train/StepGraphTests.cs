using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Functional;
using Ccr.Nn.Modules;
using Ccr.Nn.Optim;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using BatchNorm2d = Ccr.Nn.Modules.BatchNorm2d;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>
/// The CUDA-graph runner (<see cref="StepGraphs"/>) on the CUDA variant of the CPU accelerator,
/// whose emulated capture has stream capture's semantics: during the capture nothing runs, and a
/// replay runs only the kept kernel launches, no host code. So a step that reads anything on the
/// host, or takes a scalar argument that changes, or whose memory moves, would replay wrongly, and
/// these tests compare replays with eager steps bit for bit. What only a GPU can show (the driver
/// calls of <see cref="CudaGraph"/>) is tested in <see cref="CudaGraphGpuTests"/>.
/// </summary>
public class StepGraphTests
{
    static readonly Device D = Devices.CudaOnCpu;

    static int Bits(float v) => BitConverter.SingleToInt32Bits(v);

    /// <summary>A training step in miniature, from the real pieces: conv, fused batch norm + ReLU,
    /// two heads with cross-entropy and masked L1, CCR between them (anchors, mining, triplet loss
    /// with the lambda ramp), the weighted sum, backward, the finite guard and Adam, with every
    /// per-step value (batch, learning rate, bias corrections, lambda) in device memory.</summary>
    sealed class MiniStep : IDisposable
    {
        sealed class Net : Module
        {
            public readonly Conv2d Conv, Sem, Dep;
            public readonly BatchNorm2d Bn;
            public readonly CcrLoss CcrLoss;

            public Net(Device d, Rng rng, StepScalars scalars)
            {
                Conv = Child("conv", new Conv2d(d, rng, 3, 4, 3, padding: 1));
                Bn = Child("bn", new BatchNorm2d(d, 4));
                Sem = Child("sem", new Conv2d(d, rng, 4, 3, 1));
                Dep = Child("dep", new Conv2d(d, rng, 4, 1, 1));
                var cfg = new CcrConfig { Sharing = ProjectorSharing.None, TopK = 4, NumNegatives = 2, Gamma = 0.05f, RampEpochs = 4 };
                CcrLoss = Child("ccr", new CcrLoss(d, rng, cfg, [("semseg", 4), ("depth", 4)], seed: 7, scalars: scalars));
            }
        }

        const int N = 2, H = 8, W = 8;
        readonly StepScalars _scalars;
        readonly Net _net;
        readonly ParameterArena _arena;
        readonly Adam _adam;
        readonly FiniteGuard _guard;
        readonly Tensor _images, _sem, _dep; // the staged batch: fixed buffers
        List<(string Target, string Source)> _pairs = [];
        double _epoch;

        public MiniStep(Device d)
        {
            _scalars = new StepScalars(d);
            _net = new Net(d, new Rng(11), _scalars);
            _arena = new ParameterArena(_net.Parameters().ToList());
            _guard = new FiniteGuard(d, 4);
            _adam = new Adam(_arena, 1e-2f, weightDecay: 1e-3f, scalars: _scalars) { Guard = _guard };
            _images = Tensor.Empty(d, N, 3, H, W);
            _sem = Tensor.Empty(d, DType.I32, N, H, W);
            _dep = Tensor.Empty(d, N, 1, H, W);
        }

        public HostCounters Counters => new(() => [_net.Bn.NumBatchesTracked], v => _net.Bn.NumBatchesTracked = v[0]);

        /// <summary>The host's part of step k: a new batch into the fixed buffers, the step's scalars, one upload.</summary>
        public void Host(int k)
        {
            var r = Rand.New(100 + k);
            _images.Data.CopyFrom(Rand.Floats(r, N * 3 * H * W));
            _sem.IntData.CopyFrom(Rand.Ints(r, N * H * W, 3));
            _dep.Data.CopyFrom(Rand.Floats(r, N * H * W, 0.5f, 4f));
            _adam.Lr = 1e-2f / (k + 1);
            _adam.PrepareUpdate();
            _epoch = 0.5 * k;
            _net.CcrLoss.SetLambda(_epoch);
            _scalars.Upload();
            _pairs = _net.CcrLoss.NextPairs(["semseg", "depth"]);
        }

        /// <summary>The device's part: launches only.</summary>
        public void Body()
        {
            using var scope = new TensorScope();
            using var ls = TaskLabels.FromDevice("semseg", _sem);
            using var ld = TaskLabels.FromDevice("depth", _dep);
            var f = _net.Bn.ForwardRelu(_net.Conv.Forward(_images));
            var ce = F.CrossEntropy(_net.Sem.Forward(f), _sem, 255);
            var l1 = F.MaskedL1(_net.Dep.Forward(f), _dep);
            var (ccr, _) = _net.CcrLoss.Forward(new Dictionary<string, Tensor> { ["semseg"] = f, ["depth"] = f },
                                            new Dictionary<string, TaskLabels> { ["semseg"] = ls, ["depth"] = ld }, _pairs, _epoch);
            var total = F.WeightedSum([ce, l1, ccr], [1f, 2f, 1f]);
            _adam.ZeroGrad();
            total.Backward();
            _guard.Record([ce, l1, ccr, total], _arena.Grads);
            _adam.LaunchUpdate();
        }

        /// <summary>Everything a step leaves behind, as bits: parameters, Adam's moments, batch norm's
        /// running statistics and counter, the CCR counter, the guard's state and loss terms.</summary>
        public int[] State()
        {
            var floats = _arena.Values.ToArray().Concat(_adam.StateTensors().SelectMany(t => t.Value.ToArray()))
                .Concat(_net.Bn.RunningMean.ToArray()).Concat(_net.Bn.RunningVar.ToArray()).Concat(_guard.Read().Terms);
            var s = _guard.Read();
            return [.. floats.Select(Bits), .. _net.CcrLoss.Counter.ToIntArray(), (int)_net.Bn.NumBatchesTracked, s.Tripped ? 1 : 0];
        }

        public float[] Terms => _guard.Read().Terms;

        public void Dispose()
        {
            _images.Dispose(); _sem.Dispose(); _dep.Dispose();
            _adam.Dispose(); _guard.Dispose(); _arena.Dispose();
            _net.DisposeTensors(); _scalars.Dispose();
        }
    }

    [Fact]
    public void ReplayedStepsEqualEagerStepsBitForBit()
    {
        using var eager = new MiniStep(D);
        using var graphed = new MiniStep(D);
        var said = new List<string>();
        using var graphs = StepGraphs.Create(D, said.Add, emulate: true)!;
        Assert.True(graphs.Emulated);
        var modes = new List<StepMode>();
        var recordings = new List<LaunchLog.Recording>();
        for (int k = 0; k < 5; k++)
        {
            eager.Host(k);
            long copies = HostCopies.Total, allocations = D.Pool.Allocations;
            using (var rec = D.Launches.Record())
            using (HostCopies.Forbid("the eager mini step"))
            {
                eager.Body();
                recordings.Add(rec);
            }
            Assert.Equal(copies, HostCopies.Total);
            if (k > 0) Assert.Equal(allocations, D.Pool.Allocations); // steady state: no new device memory

            graphed.Host(k);
            modes.Add(graphs.Run("mini", graphed.Body, eager: k == 3, graphed.Counters)); // step 3: a "logging" step, run eagerly
            Assert.Equal(eager.State(), graphed.State()); // parameters, moments, statistics, counters, losses: the same bits
        }
        Assert.Equal([StepMode.Eager, StepMode.Captured, StepMode.Replayed, StepMode.Eager, StepMode.Replayed], modes);
        Assert.Empty(said);
        Assert.Equal(2, graphs.Replays);
        Assert.True(graphs.KernelsPerGraph > 30, $"{graphs.KernelsPerGraph} kernels captured");
        Assert.Equal(recordings[1].Launches.Count, graphs.KernelsPerGraph);
        // the steady state a graph relies on: every step launches the same kernels with the same
        // arguments on the same pool blocks, and rents the same blocks in the same order
        Assert.DoesNotContain(recordings[1].Launches, l => l.Args.Contains("ext#")); // every view resolved to a pool block
        Assert.True(recordings[1].Blocks.Count > 20, $"{recordings[1].Blocks.Count} blocks touched");
        for (int k = 2; k < 5; k++)
        {
            Assert.Equal(recordings[1].Launches, recordings[k].Launches);
            Assert.Equal(recordings[1].Rents, recordings[k].Rents);
        }
        Assert.All(eager.Terms, t => Assert.True(float.IsFinite(t) && t != 0));
    }

    /// <summary>A toy step on a device of its own (so the pool's blocks are predictable):
    /// acc += scale[0] * x, with x and scale uploaded before each step.</summary>
    sealed class Accumulate : IDisposable
    {
        public readonly Device D = Device.CreateCpu(KernelVariant.Cuda);
        public readonly Tensor X, Acc;
        public readonly StepScalars Scalars;
        public readonly ScalarSlot Scale;
        public readonly float[] Expected = new float[37];

        public Accumulate()
        {
            X = Tensor.Empty(D, 37);
            Acc = Tensor.Zeros(D, 37);
            Scalars = new StepScalars(D, 1);
            Scale = Scalars.Reserve("scale", 1);
        }

        public void Host(int k, float scale)
        {
            var x = Rand.Floats(Rand.New(k), 37);
            X.Data.CopyFrom(x);
            Scale[0] = scale;
            Scalars.Upload();
            for (int i = 0; i < 37; i++) Expected[i] = scale * x[i] + Expected[i];
        }

        public void Body()
        {
            using var scope = new TensorScope();
            var t = Tensor.Empty(D, 37); // scratch from the pool
            Elementwise.Axpby(D, t.Data, X.Data, Scale.Data, 0f);
            Elementwise.Add(D, Acc.Data, Acc.Data, t.Data);
        }

        public void Dispose() { X.Dispose(); Acc.Dispose(); Scalars.Dispose(); D.Dispose(); }
    }

    [Fact]
    public void MemoryGivenBackToTheDeviceForcesARecaptureAfterAWarmUp()
    {
        using var a = new Accumulate();
        using var graphs = StepGraphs.Create(a.D, _ => { }, emulate: true)!;
        var modes = new List<StepMode>();
        for (int k = 0; k < 6; k++)
        {
            if (k == 3) a.D.Pool.ReleaseCached(); // the graph's scratch block is gone
            a.Host(k, 0.5f + k);
            modes.Add(graphs.Run("acc", a.Body));
            Assert.Equal(a.Expected.Select(Bits), a.Acc.ToArray().Select(Bits));
        }
        // after the release: the capture would need new memory, so that step runs eagerly (and
        // refills the pool), the next one is captured again
        Assert.Equal([StepMode.Eager, StepMode.Captured, StepMode.Replayed, StepMode.Eager, StepMode.Captured, StepMode.Replayed], modes);
    }

    [Fact]
    public void AHostCopyInTheBodyTurnsGraphsOffOnceAndEveryStepStillRuns()
    {
        using var a = new Accumulate();
        var said = new List<string>();
        using var graphs = StepGraphs.Create(a.D, said.Add, emulate: true)!;
        var modes = new List<StepMode>();
        for (int k = 0; k < 4; k++)
        {
            a.Host(k, 2f);
            modes.Add(graphs.Run("acc", () => { a.Body(); _ = a.Acc.ToArray(); })); // reads back: not capturable
            Assert.Equal(a.Expected.Select(Bits), a.Acc.ToArray().Select(Bits));
        }
        Assert.All(modes, m => Assert.Equal(StepMode.Eager, m));
        Assert.Equal(Assert.Single(said), said[0]);
        Assert.Contains("CUDA graphs off: capture failed", said[0]);
        Assert.Contains("host copy during a CUDA graph capture", said[0]);
        Assert.NotNull(graphs.DisabledBecause);
    }

    [Fact]
    public void APersistentTensorThatChangedHandsIsNotReplayedOver()
    {
        using var a = new Accumulate();
        using var graphs = StepGraphs.Create(a.D, _ => { }, emulate: true)!;
        a.Host(0, 1f); graphs.Run("acc", a.Body);
        a.Host(1, 1f); Assert.Equal(StepMode.Captured, graphs.Run("acc", a.Body));
        // the graph's scratch block (the lowest free one) is rented by someone else now: replaying would overwrite it
        var squatter = Tensor.Empty(a.D, 37);
        squatter.Data.CopyFrom(new float[37]);
        var modes = new List<StepMode>();
        for (int k = 2; k < 5; k++)
        {
            a.Host(k, 1f);
            modes.Add(graphs.Run("acc", a.Body));
            Assert.Equal(a.Expected.Select(Bits), a.Acc.ToArray().Select(Bits));
        }
        Assert.All(squatter.ToArray(), v => Assert.Equal(0f, v));
        // not replayed over the squatter: the capture would need a new block, so a step runs eagerly (and gets one), the next is captured
        Assert.Equal([StepMode.Eager, StepMode.Captured, StepMode.Replayed], modes);
        squatter.Dispose();
    }

    [Fact]
    public void TheCpuVariantHasNoGraphs()
    {
        Assert.Null(StepGraphs.Create(Devices.Cpu, _ => { }, emulate: true)); // its steps compute on the host
        Assert.Null(StepGraphs.Create(D, _ => { })); // no GPU: plain launches, nothing to say
    }

    /// <summary>CUDA capture needs every launch and copy on the created stream that the device
    /// switches to (the legacy null stream cannot be captured), including kernels loaded before the
    /// switch: the launchers pass <see cref="Device.Stream"/> at each launch. The CPU accelerator
    /// cannot show which stream a launch went to; it checks what it can: the device's stream is the
    /// accelerator's default until switched, a kernel loaded before the switch runs after it, copies
    /// go through, and the device owns (disposes) a stream it switched to.</summary>
    [Fact]
    public void TheDeviceStreamCanBeSwitchedUnderLoadedKernels()
    {
        var d = Device.CreateCpu(KernelVariant.Cuda); // its ops launch kernels
        var created = d.Accelerator.CreateStream();
        try
        {
            var ilgpuDefault = d.Accelerator.DefaultStream;
            Assert.Same(ilgpuDefault, d.Stream);
            using var block = d.Pool.Rent(1000 * sizeof(float));
            var x = new Buf<float>(block, 0, 1000);
            Elementwise.Fill(d, x, 2f); // loads the kernel while the default stream is the device's
            d.SwitchStream(created);
            Assert.Same(created, d.Stream);
            Assert.Same(ilgpuDefault, d.Accelerator.DefaultStream); // ILGPU's own default untouched
            Elementwise.Fill(d, x, 3f);
            d.Synchronize();
            Assert.All(x.ToArray(), v => Assert.Equal(3f, v));
            x.CopyFrom(Enumerable.Repeat(5f, 1000).ToArray());
            Assert.All(x.ToArray(), v => Assert.Equal(5f, v));
            Assert.Throws<NotSupportedException>(() => CudaGraph.UseCaptureStream(d)); // CUDA only
        }
        finally { d.Dispose(); }
        Assert.True(created.IsDisposed); // the device disposed the stream it was given
    }
}
