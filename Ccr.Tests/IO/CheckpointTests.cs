using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.IO;

public class CheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("ccr-ckpt-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static HrModule Small(int seed, int c1 = 8) => new(Devices.Cpu, new Rng((ulong)seed), false, [1, 1], [4, c1], [4, c1]);

    static TrainingState State(Tensor m, Tensor v, long step)
    {
        var rng = new Rng(99);
        rng.NextUInt(); rng.NextUInt();
        return new TrainingState
        {
            Step = step, Epoch = 3, RngState = rng.State, RngInc = rng.Inc, BestMetric = 0.4321,
            Config = "{\"lr\": 0.0002, \"tasks\": [\"semseg\", \"depth\"]}",
            OptimizerTensors = new Dictionary<string, Tensor> { ["adam.m"] = m, ["adam.v"] = v },
            OptimizerScalars = new Dictionary<string, double> { ["beta1_power"] = 0.9 * 0.9, ["lr"] = 2e-4 },
        };
    }

    [Fact]
    public void RoundTripRestoresModelOptimiserAndScalars()
    {
        var d = Devices.Cpu;
        var a = Small(1); var b = Small(2);
        using var scope = new TensorScope();
        var m = Tensor.FromArray(d, Rand.Floats(Rand.New(3), 10), 2, 5);
        var v = Tensor.FromArray(d, Rand.Floats(Rand.New(4), 7), 7);
        var m2 = Tensor.Zeros(d, 2, 5); var v2 = Tensor.Zeros(d, 7);
        try
        {
            StateDict.Entries(a).First(e => e.Kind == StateKind.NumBatchesTracked).Owner!.NumBatchesTracked = 41;
            string path = Path.Combine(_dir, "last.ckpt");
            Checkpoint.Save(path, a, State(m, v, 1234));
            var s = Checkpoint.Load(path, b, new Dictionary<string, Tensor> { ["adam.m"] = m2, ["adam.v"] = v2 });
            Assert.Equal(1234, s.Step);
            Assert.Equal(3, s.Epoch);
            Assert.Equal(0.4321, s.BestMetric);
            Assert.Contains("semseg", s.Config);
            Assert.Equal(0.81, s.OptimizerScalars["beta1_power"], 15);
            var expect = new Rng(99); expect.NextUInt(); expect.NextUInt();
            var restored = s.RestoreRng();
            Assert.Equal(expect.NextUInt(), restored.NextUInt());
            Assert.Equal(m.ToArray(), m2.ToArray());
            Assert.Equal(v.ToArray(), v2.ToArray());
            var ha = StateDict.ToHost(a); var hb = StateDict.ToHost(b);
            for (int i = 0; i < ha.Count; i++) Assert.Equal(ha[i].Tensor.Data, hb[i].Tensor.Data);
            Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
        }
        finally { a.DisposeTensors(); b.DisposeTensors(); }
    }

    /// <summary>Lets <paramref name="limit"/> bytes through, then fails as a killed process would stop.</summary>
    sealed class FailingStream(Stream inner, long limit) : Stream
    {
        long _written;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > limit)
            {
                inner.Write(buffer[..(int)(limit - _written)]);
                inner.Flush();
                throw new IOException("simulated crash mid-write");
            }
            inner.Write(buffer);
            _written += buffer.Length;
        }
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Fact]
    public void CrashDuringWriteLeavesThePreviousCheckpointLoadable()
    {
        var d = Devices.Cpu;
        var a = Small(5); var changed = Small(6); var b = Small(7);
        using var scope = new TensorScope();
        var m = Tensor.FromArray(d, Rand.Floats(Rand.New(8), 10), 2, 5);
        var v = Tensor.FromArray(d, Rand.Floats(Rand.New(9), 7), 7);
        try
        {
            string path = Path.Combine(_dir, "last.ckpt");
            Checkpoint.Save(path, a, State(m, v, 100));
            long size = new FileInfo(path).Length;
            Assert.Throws<IOException>(() => Checkpoint.Save(path, changed, State(m, v, 200), s => new FailingStream(s, size / 2)));
            Assert.Equal(size, new FileInfo(path).Length);
            Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
            var s = Checkpoint.Load(path, b, new Dictionary<string, Tensor> { ["adam.m"] = Tensor.Zeros(d, 2, 5), ["adam.v"] = Tensor.Zeros(d, 7) });
            Assert.Equal(100, s.Step);
            var ha = StateDict.ToHost(a); var hb = StateDict.ToHost(b);
            for (int i = 0; i < ha.Count; i++) Assert.Equal(ha[i].Tensor.Data, hb[i].Tensor.Data);
        }
        finally { a.DisposeTensors(); changed.DisposeTensors(); b.DisposeTensors(); }
    }

    [Fact]
    public void IncompatibleModelOrOptimiserIsRefusedWithAListAndNothingChanges()
    {
        var d = Devices.Cpu;
        var a = Small(10); var other = Small(11, c1: 6);
        using var scope = new TensorScope();
        var m = Tensor.FromArray(d, Rand.Floats(Rand.New(12), 10), 2, 5);
        var v = Tensor.FromArray(d, Rand.Floats(Rand.New(13), 7), 7);
        try
        {
            string path = Path.Combine(_dir, "a.ckpt");
            Checkpoint.Save(path, a, State(m, v, 1));
            var before = other.NamedParameters().Select(p => p.Tensor.ToArray()).ToList();
            var wrongM = Tensor.Zeros(d, 10);
            var e = Assert.Throws<StateDictException>(() =>
                Checkpoint.Load(path, other, new Dictionary<string, Tensor> { ["adam.m"] = wrongM, ["adam.w"] = Tensor.Zeros(d, 7) }));
            Assert.Contains(path, e.Message);
            Assert.Contains("model.branches.1.0.conv1.weight", e.Message);   // shape (8,8,3,3) vs (6,6,3,3)
            Assert.Contains("optim.adam.m shape [2, 5]", e.Message);
            Assert.Contains("missing optim.adam.w", e.Message);
            Assert.Contains("unexpected optim.adam.v", e.Message);
            Assert.NotEmpty(e.Report.Mismatched);
            Assert.All(wrongM.ToArray(), x => Assert.Equal(0f, x));
            var after = other.NamedParameters().Select(p => p.Tensor.ToArray()).ToList();
            for (int i = 0; i < before.Count; i++) Assert.Equal(before[i], after[i]);
            // a plain safetensors file is not a checkpoint
            StateDict.Save(Path.Combine(_dir, "w.safetensors"), a);
            var ex = Assert.Throws<CheckpointException>(() => Checkpoint.Load(Path.Combine(_dir, "w.safetensors"), a));
            Assert.Contains("not a Ccr checkpoint", ex.Message);
        }
        finally { a.DisposeTensors(); other.DisposeTensors(); }
    }

    [Fact]
    public void SaveRefusesNonFiniteBatchNormStatisticsAndLeavesThePreviousFile()
    {
        var d = Devices.Cpu;
        var a = Small(20);
        using var scope = new TensorScope();
        var m = Tensor.FromArray(d, Rand.Floats(Rand.New(21), 10), 2, 5);
        var v = Tensor.FromArray(d, Rand.Floats(Rand.New(22), 7), 7);
        try
        {
            string path = Path.Combine(_dir, "last.ckpt");
            Checkpoint.Save(path, a, State(m, v, 1));
            var before = File.ReadAllBytes(path);
            // an overflowed running variance (the loss can stay finite while it does)
            var (name, rv) = a.NamedBuffers().First(b => b.Name.EndsWith("running_var"));
            var vals = rv.ToArray(); vals[1] = float.PositiveInfinity; vals[2] = float.NaN;
            rv.Data.CopyFrom(vals);
            var e = Assert.Throws<NonFiniteException>(() => Checkpoint.Save(path, a, State(m, v, 2)));
            Assert.Contains("refusing to write", e.Message);
            Assert.Contains(name + " (2,", e.Message);
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
            // optimiser state is checked too
            vals[1] = 1f; vals[2] = 1f; rv.Data.CopyFrom(vals);
            var badM = Tensor.FromArray(d, Enumerable.Repeat(float.NaN, 10).ToArray(), 2, 5);
            var e2 = Assert.Throws<NonFiniteException>(() => Checkpoint.Save(path, a, State(badM, v, 2)));
            Assert.Contains("optim.adam.m (10,", e2.Message);
        }
        finally { a.DisposeTensors(); }
    }

    [Fact]
    public void StaleTemporariesOfDeadWritersAreRemovedAndLiveOnesKept()
    {
        string dead = Path.Combine(_dir, "last.ckpt.tmp-2147483001"), live = Path.Combine(_dir, "best.ckpt.tmp-1");
        string other = Path.Combine(_dir, "notes.tmp-x");
        foreach (var f in new[] { dead, live, other }) File.WriteAllText(f, "x");
        Assert.Equal([dead], Checkpoint.RemoveStaleTemporaries(_dir));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
    }
}
