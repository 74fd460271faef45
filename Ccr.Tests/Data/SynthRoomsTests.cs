using System.Diagnostics;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

public class SynthRoomsTests
{
    private static byte[] Bytes(Sample s)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        foreach (float v in s.Image) w.Write(v);
        foreach (int v in s.Semseg!) w.Write(v);
        foreach (float v in s.Depth!) w.Write(v);
        foreach (float v in s.Normals!) w.Write(v);
        foreach (float v in s.Edge!) w.Write(v);
        foreach (int v in s.Saliency!) w.Write(v);
        foreach (int v in s.Parts!) w.Write(v);
        return ms.ToArray();
    }

    [Fact]
    public void SameSeedAndIndexGiveIdenticalBytes()
    {
        var a = Bytes(SynthRoomsRenderer.Render(3, 17, 48, 64));
        var b = Bytes(SynthRoomsRenderer.Render(3, 17, 48, 64));
        Assert.Equal(a, b);
        Assert.NotEqual(a, Bytes(SynthRoomsRenderer.Render(3, 18, 48, 64)));
        Assert.NotEqual(a, Bytes(SynthRoomsRenderer.Render(4, 17, 48, 64)));
    }

    [Fact]
    public void LabelsAreConsistent()
    {
        int objectsSeen = 0, personsSeen = 0;
        for (int index = 0; index < 12; index++)
        {
            var s = SynthRoomsRenderer.Render(0, index, 48, 64);
            int h = s.Height, w = s.Width, n = h * w;
            for (int i = 0; i < n; i++)
            {
                int c = s.Semseg![i];
                Assert.InRange(c, 0, SynthClasses.Count - 1);
                Assert.Equal(SynthClasses.IsSalient(c) ? 1 : 0, s.Saliency![i]);
                Assert.Equal(c == SynthClasses.Person, s.Parts![i] != 0);
                Assert.True(s.Depth![i] > 0 && s.Depth[i] < 15, $"depth {s.Depth[i]} at {i}");
                double nx = s.Normals![i], ny = s.Normals[n + i], nz = s.Normals[2 * n + i];
                TestData.Close(1.0, Math.Sqrt(nx * nx + ny * ny + nz * nz), 1e-5, 0, "normal length");
                if (SynthClasses.IsSalient(c)) objectsSeen++;
                if (c == SynthClasses.Person) personsSeen++;
            }
            // Every change of class between right/lower neighbours is an edge pixel, and edges are one pixel thin
            // in the sense that each edge pixel has a differing right or lower neighbour.
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int i = y * w + x;
                    bool right = x + 1 < w && s.Semseg![i] != s.Semseg[i + 1];
                    bool down = y + 1 < h && s.Semseg![i] != s.Semseg[i + w];
                    if (right || down) Assert.Equal(1f, s.Edge![i]);
                }
            // The centre pixel's ray is about the optical axis: its normal faces the camera (z < 0).
            int centre = (h / 2) * w + w / 2;
            Assert.True(s.Normals![2 * n + centre] < 0, "normal at the centre faces the camera");
            // Floor below the horizon: the bottom row centre is the floor or an object, never the ceiling.
            Assert.NotEqual(SynthClasses.Ceiling, s.Semseg![(h - 1) * w + w / 2]);
        }
        Assert.True(objectsSeen > 0 && personsSeen > 0, $"objects {objectsSeen}, person pixels {personsSeen}");
    }

    [Fact]
    public void GeneratesASmallSetQuicklyAndTheNyudLoaderReadsItBack()
    {
        string data = TestData.TempDir("synth");
        var sw = Stopwatch.StartNew();
        string dir = SynthRooms.EnsureCached(data, 48, 64, seed: 1, train: 40, val: 10);
        sw.Stop();
        Assert.True(sw.Elapsed.TotalSeconds < 20, $"50 images took {sw.Elapsed.TotalSeconds:0.0} s");
        Assert.True(SynthRooms.IsComplete(dir, 48, 64, 1, 40, 10));
        var disk = SynthRooms.Open(dir, "val");
        var mem = new SynthRoomsDataset("val", 10, 48, 64, seed: 1);
        Assert.Equal(10, disk.Count);
        Assert.Equal(6, disk.Tasks.Count);
        for (int i = 0; i < 10; i += 3)
            Assert.Equal(Bytes(mem.Get(i)), Bytes(disk.Get(i)));
        Assert.Equal(40, SynthRooms.Open(dir, "train").Count);
        // A second call finds the complete cache and returns at once.
        sw.Restart();
        Assert.Equal(dir, SynthRooms.EnsureCached(data, 48, 64, seed: 1, train: 40, val: 10));
        Assert.True(sw.Elapsed.TotalSeconds < 1);
    }

    [Fact]
    public void TestSplitComesFromScenesTrainAndValNeverUse()
    {
        string data = TestData.TempDir("synth-test");
        string dir = SynthRooms.EnsureCached(data, 24, 32, seed: 3, train: 5, val: 4, test: 4);
        Assert.EndsWith("synthrooms-24x32-s3-5-4-4", dir);
        Assert.EndsWith("synthrooms-24x32-s3-5-4", SynthRooms.CacheDir(data, 24, 32, 3, 5, 4)); // old sets keep their name
        Assert.True(SynthRooms.IsComplete(dir, 24, 32, 3, 5, 4, 4));
        Assert.False(SynthRooms.IsComplete(dir, 24, 32, 3, 5, 4)); // a set without a test split is another set
        var test = SynthRooms.Open(dir, "test");
        Assert.Equal(4, test.Count);
        var mem = new SynthRoomsDataset("test", 4, 24, 32, seed: 3);
        Assert.Equal(SynthRoomsDataset.TestIndexOffset + 2, mem.SceneIndex(2));
        var seen = new HashSet<string>();
        foreach (var split in new[] { "train", "val" })
        {
            var ds = SynthRooms.Open(dir, split);
            for (int i = 0; i < ds.Count; i++) seen.Add(Convert.ToBase64String(Bytes(ds.Get(i))));
        }
        for (int i = 0; i < 4; i++)
        {
            var b = Bytes(test.Get(i));
            Assert.Equal(Bytes(mem.Get(i)), b);
            Assert.DoesNotContain(Convert.ToBase64String(b), seen);
            Assert.StartsWith("test_", test.GetId(i));
        }
        Assert.Throws<ArgumentException>(() => new SynthRoomsDataset("holdout", 1, 24, 32));
    }
}
