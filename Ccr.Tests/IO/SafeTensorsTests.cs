using Ccr.Nn.Modules;
using System.Buffers.Binary;
using System.Text;
using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.IO;

public class SafeTensorsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("ccr-st-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);
    string P(string name) => Path.Combine(_dir, name);
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", name);

    [Fact]
    public void RoundTripKeepsDtypesShapesValuesAndMetadata()
    {
        var f32 = HostTensor.FromFloats([1.5f, -2f, 3.25f, float.NegativeInfinity, 0f, 1e-30f], 2, 3);
        // F16 and BF16 written by hand: 1.0 = 0x3C00 (half), 0x3F80 (bfloat16); -2.5 = 0xC100, 0xC020
        var f16 = new HostTensor("F16", [2], [0x00, 0x3C, 0x00, 0xC1]);
        var bf16 = new HostTensor("BF16", [2, 1], [0x80, 0x3F, 0x20, 0xC0]);
        var i64 = HostTensor.FromInt64(-123456789012);
        var empty = HostTensor.FromFloats([], 0, 4);
        SafeTensors.Write(P("a.safetensors"), [("w", f32), ("h", f16), ("b", bf16), ("n", i64), ("e", empty)],
                          new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ü \"quoted\"" });
        var r = SafeTensors.Read(P("a.safetensors"));
        Assert.Equal(["w", "h", "b", "n", "e"], r.Names);
        Assert.Equal(f32.ToFloats(), r.Tensors["w"].ToFloats());
        Assert.Equal([2L, 3], r.Tensors["w"].Shape);
        Assert.Equal([1f, -2.5f], r.Tensors["h"].ToFloats());
        Assert.Equal([1f, -2.5f], r.Tensors["b"].ToFloats());
        Assert.Equal("I64", r.Tensors["n"].DType);
        Assert.Empty(r.Tensors["n"].Shape);
        Assert.Equal([-123456789012L], r.Tensors["n"].ToInt64());
        Assert.Equal(0, r.Tensors["e"].Numel());
        Assert.Equal("ü \"quoted\"", r.Metadata["note"]);
        // the data starts 8-byte aligned
        var bytes = File.ReadAllBytes(P("a.safetensors"));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
    }

    [Fact]
    public void ReadsTheFileWrittenByPython()
    {
        var f = SafeTensors.Read(Fixture("hrnet_block_weights.safetensors"));
        var nbt = f.Tensors["branches.0.0.bn1.num_batches_tracked"];
        Assert.Equal("I64", nbt.DType);
        Assert.Equal([7L], nbt.ToInt64());
        Assert.Equal([4L, 4, 3, 3], f.Tensors["branches.0.0.conv1.weight"].Shape);
        // the Python-written state dict fits our HrModule by name and shape
        var m = new HrModule(Devices.Cpu, new Rng(1), false, [1, 1], [4, 8], [4, 8]);
        try
        {
            var rep = StateDict.Load(m, f.Tensors, f.Path);
            Assert.True(rep.IsClean, rep.Describe());
            Assert.Equal(36, rep.Loaded.Count);
            Assert.Equal(f.Tensors["fuse_layers.1.0.0.1.running_var"].ToFloats(),
                         StateDict.Entries(m).Single(e => e.Name == "fuse_layers.1.0.0.1.running_var").Tensor!.ToArray());
            Assert.Equal(7, StateDict.Entries(m).Single(e => e.Name == "branches.1.0.bn2.num_batches_tracked").Owner!.NumBatchesTracked);
        }
        finally { m.DisposeTensors(); }
    }

    [Fact]
    public void HrNetStateDictRoundTripsBitForBit()
    {
        var d = Devices.Cpu;
        // the tiny config: same module types and naming as W18 (checked against timm elsewhere),
        // ~10x fewer tensors to copy host<->device, so the test stays well under a second
        var a = new HrNet(d, new Rng(11), HrNetConfig.Tiny);
        var b = new HrNet(d, new Rng(12), HrNetConfig.Tiny);
        try
        {
            // make buffers and num_batches_tracked non-default so that they are really carried
            int k = 0;
            foreach (var e in StateDict.Entries(a))
            {
                if (e.Kind == StateKind.NumBatchesTracked) e.Owner!.NumBatchesTracked = 1000 + k++;
                else if (e.Kind == StateKind.Buffer) e.Tensor!.Data.CopyFrom(Rand.Floats(Rand.New(k++), e.Tensor.Numel, 0.1f, 2f));
            }
            StateDict.Save(P("hr.safetensors"), a);
            var rep = StateDict.Load(b, P("hr.safetensors"));
            Assert.True(rep.IsClean, rep.Describe());
            Assert.Equal(StateDict.Entries(a).Count, rep.Loaded.Count);
            var ea = StateDict.ToHost(a);
            var eb = StateDict.ToHost(b);
            Assert.Equal(ea.Count, eb.Count);
            for (int i = 0; i < ea.Count; i++)
            {
                Assert.Equal(ea[i].Name, eb[i].Name);
                Assert.Equal(ea[i].Tensor.DType, eb[i].Tensor.DType);
                Assert.True(ea[i].Tensor.Data.AsSpan().SequenceEqual(eb[i].Tensor.Data), $"{ea[i].Name} differs after the round trip");
            }
        }
        finally { a.DisposeTensors(); b.DisposeTensors(); }
    }

    /// <summary>A timm classifier checkpoint has head keys the feature model lacks: strict refuses, non-strict reports them.</summary>
    [Fact]
    public void UnexpectedAndMissingKeysAreReported()
    {
        var d = Devices.Cpu;
        var m = new HrModule(d, new Rng(1), false, [1, 1], [4, 8], [4, 8]);
        try
        {
            var f = SafeTensors.Read(Fixture("hrnet_block_weights.safetensors"));
            var t = f.Tensors.Where(kv => kv.Key != "branches.0.0.conv2.weight").ToDictionary();
            t["classifier.weight"] = HostTensor.FromFloats([1f, 2f], 2);
            var e = Assert.Throws<StateDictException>(() => StateDict.Load(m, t, "x.safetensors"));
            Assert.Equal(["branches.0.0.conv2.weight"], e.Report.Missing);
            Assert.Equal(["classifier.weight"], e.Report.Unexpected);
            var rep = StateDict.Load(m, t, "x.safetensors", strict: false);
            Assert.Equal(35, rep.Loaded.Count);
            Assert.Contains("classifier.weight", rep.Describe());
        }
        finally { m.DisposeTensors(); }
    }

    static float[][] Snapshot(Module m) => m.NamedParameters().Concat(m.NamedBuffers()).Select(p => p.Tensor.ToArray()).ToArray();

    [Theory]
    [InlineData("truncated")]
    [InlineData("short")]
    [InlineData("header")]
    [InlineData("dtype")]
    [InlineData("shape")]
    [InlineData("offsets")]
    public void BadFilesFailNamingFileAndTensorAndLeaveTheModelUntouched(string fault)
    {
        var d = Devices.Cpu;
        var src = new HrModule(d, new Rng(21), false, [1, 1], [4, 8], [4, 8]);
        var m = new HrModule(d, new Rng(22), false, [1, 1], [4, 8], [4, 8]);
        try
        {
            var host = StateDict.ToHost(src);
            string victim = host[^6].Name;  // the last conv weight: every tensor before it would load
            Assert.Equal("fuse_layers.1.0.0.0.weight", victim);
            string path = P($"{fault}.safetensors");
            if (fault == "dtype")
                host[^6] = (victim, new HostTensor("I32", host[^6].Tensor.Shape, host[^6].Tensor.Data));
            if (fault == "shape")
                host[^6] = (victim, HostTensor.FromFloats(new float[8 * 4 * 9], 4, 8, 3, 3));
            SafeTensors.Write(path, host);
            var bytes = File.ReadAllBytes(path);
            int hlen = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            if (fault == "truncated") File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
            if (fault == "short") File.WriteAllBytes(path, bytes[..5]);
            if (fault == "header") { bytes[8 + hlen / 2] = (byte)'{'; File.WriteAllBytes(path, bytes); }
            if (fault == "offsets")
            {
                // shift the victim's offsets by 4 bytes (same length): an overlap / hole
                var json = Encoding.UTF8.GetString(bytes, 8, hlen);
                int at = json.IndexOf(victim, StringComparison.Ordinal);
                int o = json.IndexOf("data_offsets\":[", at, StringComparison.Ordinal) + 15;
                int comma = json.IndexOf(',', o), close = json.IndexOf(']', o);
                long b0 = long.Parse(json[o..comma]), b1 = long.Parse(json[(comma + 1)..close]);
                string repl = $"{b0 + 4},{b1 + 4}";
                string orig = json[o..close];
                json = json[..o] + repl.PadRight(orig.Length) + json[close..];
                Assert.Equal(hlen, Encoding.UTF8.GetByteCount(json));
                Encoding.UTF8.GetBytes(json).CopyTo(bytes, 8);
                File.WriteAllBytes(path, bytes);
            }

            var before = Snapshot(m);
            var ex = Assert.ThrowsAny<Exception>(() => StateDict.Load(m, path));
            Assert.True(ex is InvalidDataException or StateDictException, ex.ToString());
            Assert.Contains(path, ex.Message);
            if (fault is "truncated" or "dtype" or "shape" or "offsets") Assert.Contains("fuse_layers.1.0.0", ex.Message);
            var after = Snapshot(m);
            for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i]);
        }
        finally { src.DisposeTensors(); m.DisposeTensors(); }
    }
}
