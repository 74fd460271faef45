using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Ccr.Training.Config;
using Ccr.Training.Reporting;
using Ccr.Training.Reporting.Proto;
using Ccr.Training;
using Ccr.Tests.Common;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>
/// TensorBoard event files of a run: TFRecord framing whose CRCs are checked here with a CRC-32C
/// of the test's own (bit by bit, checked against RFC 3720's vectors and the runtime's hardware
/// CRC-32C), the scalars equal to metrics.csv and eval.json, PNG prediction images, the START marker
/// of a resumed run, and train.tensorboard=false.
/// </summary>
public class TensorBoardTests
{
    /// <summary>CRC-32C bit by bit (reflected 0x82F63B78), independent of the product's table.</summary>
    static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (uint)-(int)(c & 1));
        }
        return ~c;
    }

    static uint Masked(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);

    [Fact]
    public void Crc32CMatchesKnownVectorsAndTheHardwareInstruction()
    {
        // RFC 3720 B.4 and the usual check value
        Assert.Equal(0xE3069283u, BitwiseCrc32C("123456789"u8));
        Assert.Equal(0x8A9136AAu, BitwiseCrc32C(new byte[32]));
        Assert.Equal(0x62A8AB43u, BitwiseCrc32C(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, BitwiseCrc32C(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        var r = new Random(4);
        foreach (int n in new[] { 0, 1, 7, 8, 255, 4099 })
        {
            var data = new byte[n];
            r.NextBytes(data);
            uint hw = 0xFFFFFFFFu;
            foreach (byte b in data) hw = System.Numerics.BitOperations.Crc32C(hw, b);
            Assert.Equal(~hw, BitwiseCrc32C(data));
            Assert.Equal(BitwiseCrc32C(data), Crc32C.Compute(data));
        }
    }

    /// <summary>Every record of an event file, both CRCs checked with the test's CRC, parsed as Events.</summary>
    static List<Event> ReadEvents(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int at = 0;
        while (at < bytes.Length)
        {
            Assert.True(at + 12 <= bytes.Length, $"{path}: a partial record header at byte {at}");
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            Assert.Equal(Masked(BitwiseCrc32C(bytes.AsSpan(at, 8))), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            var data = bytes.AsSpan(at + 12, (int)len);
            Assert.Equal(Masked(BitwiseCrc32C(data)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)len)));
            events.Add(Event.Parser.ParseFrom(data));
            at += 16 + (int)len;
        }
        return events;
    }

    static TrainConfig Tiny(string root, params string[] more) => ConfigLoader.Load("synth-cpu",
    [
        "data.path=" + Path.Combine(root, "data"), "data.train_size=6", "data.val_size=2", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1",
        "train.batch_size=3", "train.epochs=2", "train.eval_every=1", "train.log_every=1",
        "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", .. more,
    ]);

    static void Train(TrainConfig cfg, string runDir, bool resume = false)
    {
        using var s = new TrainSession(cfg, Devices.Cpu);
        var t = new Trainer(s, runDir, _ => { });
        if (resume) t.Resume();
        t.Run();
    }

    static string[] EventFiles(string dir) => Directory.GetFiles(dir, "events.out.tfevents.*").Order().ToArray();

    [Fact]
    public void RunFolderEventFileHoldsTheCsvScalarsEvalMetricsAndImages()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            string run = Path.Combine(root, "run");
            Train(Tiny(root), run);
            var file = Assert.Single(EventFiles(run));
            var events = ReadEvents(file);
            Assert.Equal("brain.Event:2", events[0].FileVersion);
            Assert.Equal(events.Count, TensorBoardWriter.Read(file).Count); // the product's reader agrees

            var scalars = events.Where(e => e.Summary != null).SelectMany(e => e.Summary.Value.Where(v => v.ValueCase == Summary.Types.Value.ValueOneofCase.SimpleValue)
                .Select(v => (e.Step, v.Tag, Value: (double)v.SimpleValue))).ToList();
            // every metrics.csv cell, at its row's step
            var csv = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
            var cols = csv[0].Split(',');
            Assert.Equal(4, csv.Length - 1); // 2 epochs of 2 steps
            foreach (var line in csv.Skip(1))
            {
                var cells = line.Split(',');
                long step = long.Parse(cells[0], CultureInfo.InvariantCulture);
                for (int c = 1; c < cols.Length; c++)
                {
                    if (cells[c] == "") continue;
                    double want = double.Parse(cells[c], CultureInfo.InvariantCulture);
                    var got = Assert.Single(scalars, s => s.Step == step && s.Tag == "train/" + cols[c]);
                    Assert.True(Math.Abs(got.Value - want) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"{cols[c]} at step {step}: {got.Value} vs csv {want}");
                }
            }
            // the last evaluation's metrics equal eval.json, logged at the last step trained (3)
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
            int evalCount = 0;
            foreach (var task in json.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Object))
                foreach (var m in task.Value.EnumerateObject())
                {
                    var got = Assert.Single(scalars, s => s.Step == 3 && s.Tag == $"eval/{task.Name}/{m.Name}");
                    Assert.Equal((float)m.Value.GetDouble(), (float)got.Value);
                    evalCount++;
                }
            Assert.True(evalCount >= 3);
            Assert.Contains(scalars, s => s.Step == 1 && s.Tag == "eval/semseg/mIoU"); // the first epoch's evaluation

            // a picture per validation image and evaluation: the input beside each task's prediction
            var images = events.Where(e => e.Summary != null).SelectMany(e => e.Summary.Value.Where(v => v.Image != null).Select(v => (e.Step, v))).ToList();
            Assert.Equal(4, images.Count); // 2 evaluations x 2 validation images
            foreach (var (_, v) in images)
            {
                Assert.StartsWith("predictions/", v.Tag);
                using var png = Image.Load<Rgb24>(v.Image.EncodedImageString.ToByteArray());
                Assert.Equal(v.Image.Height, png.Height);
                Assert.Equal(v.Image.Width, png.Width);
                Assert.Equal(32, png.Height);
                Assert.Equal(4 * 32 + 3 * 4, png.Width); // input + 3 tasks, 4-pixel gaps
                Assert.Equal(3, v.Image.Colorspace);
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void ResumedRunStartsANewFileWithAStartMarkerAndTheSwitchTurnsItOff()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            string run = Path.Combine(root, "run");
            Train(Tiny(root, "train.max_steps=2", "train.epochs=1", "train.eval_every=0"), run);
            Train(Tiny(root, "train.epochs=2", "train.eval_every=0"), run, resume: true);
            var files = EventFiles(run);
            Assert.Equal(2, files.Length);
            var second = files.Select(ReadEvents).Single(ev => ev.Any(e => e.SessionLog != null));
            var start = second.First(e => e.SessionLog != null);
            Assert.Equal(SessionLog.Types.SessionStatus.Start, start.SessionLog.Status);
            Assert.Equal(2, start.Step); // TensorBoard drops the first file's steps >= 2, which the resumed run logs again
            Assert.Equal([2L, 3L], second.Where(e => e.Summary?.Value.Any(v => v.Tag == "train/loss") == true).Select(e => e.Step));

            string off = Path.Combine(root, "off");
            Train(Tiny(root, "train.max_steps=1", "train.epochs=1", "train.eval_every=0", "train.tensorboard=false"), off);
            Assert.True(File.Exists(Path.Combine(off, "metrics.csv")));
            Assert.Empty(EventFiles(off));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void ReaderRejectsACorruptedRecordAndSkipsATruncatedTail()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ccr-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path;
            using (var w = new TensorBoardWriter(dir))
            {
                w.Scalars(5, [("a", 1.5), ("b", -2)]);
                path = w.Path;
            }
            var ev = TensorBoardWriter.Read(path);
            Assert.Equal(2, ev.Count);
            Assert.Equal(5, ev[1].Step);
            Assert.Equal([1.5f, -2f], ev[1].Summary.Value.Select(v => v.SimpleValue));
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^3]); // a writer killed mid-record
            Assert.Single(TensorBoardWriter.Read(path));
            bytes[^6] ^= 0x40;                     // a flipped bit in the last record's data
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<InvalidDataException>(() => TensorBoardWriter.Read(path));
            Assert.Contains("record 1", e.Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
