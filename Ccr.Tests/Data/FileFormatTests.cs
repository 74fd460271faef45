using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Data;

public class FileFormatTests
{
    [Fact]
    public void NpyRoundTripsFloatIntAndBytes()
    {
        string d = TestData.TempDir("npy");
        float[] f = [1.5f, -2f, float.MaxValue, 0f, 3.25f, 1e-30f];
        Npy.WriteFloat32(Path.Combine(d, "f.npy"), f, 2, 3);
        var a = Npy.Read(Path.Combine(d, "f.npy"), 2, 3);
        Assert.Equal(f, a.ToFloat());
        Npy.WriteInt32(Path.Combine(d, "i.npy"), [1, -7, 255], 3);
        Assert.Equal([1.0, -7, 255], Npy.Read(Path.Combine(d, "i.npy")).Data);
        Npy.WriteUInt8(Path.Combine(d, "b.npy"), [0, 200], 1, 2);
        Assert.Equal([1, 2], Npy.Read(Path.Combine(d, "b.npy")).Shape);
    }

    [Fact]
    public void NpyReadsNumPyFloat64AndRejectsWrongShapeWithPath()
    {
        // 0002's normals were saved by NumPy as float64 (H, W, 3).
        string path = Path.Combine(TestData.DataFixture("nyud"), "normals", "0002.npy");
        var a = Npy.Read(path, 24, 32, 3);
        Assert.Equal("<f8", a.DType);
        var e = Assert.Throws<DataFileException>(() => Npy.Read(path, 24, 32));
        Assert.Contains(path, e.Message);
        Assert.Contains("wrong shape (24, 32, 3)", e.Message);
    }

    [Fact]
    public void NpyRejectsGarbageAndTruncation()
    {
        string d = TestData.TempDir("npybad");
        string p = Path.Combine(d, "bad.npy");
        File.WriteAllText(p, "hello world, not numpy");
        Assert.Contains("bad magic", Assert.Throws<DataFileException>(() => Npy.Read(p)).Message);
        Npy.WriteFloat32(p, new float[12], 3, 4);
        var bytes = File.ReadAllBytes(p);
        File.WriteAllBytes(p, bytes[..^8]);
        var e = Assert.Throws<DataFileException>(() => Npy.Read(p));
        Assert.Contains(p, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Theory]
    [InlineData("2008_000001")] // written by scipy with zlib compression (miCOMPRESSED)
    [InlineData("2008_000002")] // uncompressed
    public void MatReadsLabelMapWrittenByScipy(string id)
    {
        string path = Path.Combine(TestData.DataFixture("pascal"), "pascal-context", "trainval", id + ".mat");
        var lm = Assert.IsType<MatNumeric>(MatFile.ReadVariable(path, "LabelMap"));
        Assert.Equal(11, lm.ClassId); // uint16
        var got = lm.ToRowMajorInt(out int h, out int w);
        Assert.Equal((24, 32), (h, w));
        Assert.Equal(TestData.ReadInts(TestData.Fixture("data", $"labelmap_{id}.npy")), got);
    }

    [Fact]
    public void MatReadsNestedStructsOfHumanParts()
    {
        string path = Path.Combine(TestData.DataFixture("pascal"), "human_parts", "2008_000001.mat");
        var anno = Assert.IsType<MatStruct>(MatFile.ReadVariable(path, "anno"));
        var objects = Assert.IsType<MatStruct>(anno.Field(0, "objects"));
        Assert.Equal(3, objects.Elements.Length);
        Assert.Equal("person", Assert.IsType<MatChar>(objects.Field(0, "class")).Value);
        var parts = Assert.IsType<MatStruct>(objects.Field(0, "parts"));
        Assert.Equal("torso", Assert.IsType<MatChar>(parts.Field(1, "part_name")).Value);
        Assert.True(objects.Field(2, "parts").IsEmpty);
        var expected = TestData.ReadInts(TestData.Fixture("data", "parts_2008_000001.npy"));
        Assert.Equal(expected, PascalDataset.LoadParts(path, 24, 32));
    }

    [Fact]
    public void MatErrorsNameTheFile()
    {
        string d = TestData.TempDir("mat");
        string p = Path.Combine(d, "x.mat");
        var bytes = File.ReadAllBytes(Path.Combine(TestData.DataFixture("pascal"), "pascal-context", "trainval", "2008_000001.mat"));
        File.WriteAllBytes(p, bytes[..200]);
        var e = Assert.Throws<DataFileException>(() => MatFile.Read(p));
        Assert.Contains(p, e.Message);
        var e2 = Assert.Throws<DataFileException>(() => MatFile.ReadVariable(
            Path.Combine(TestData.DataFixture("pascal"), "pascal-context", "trainval", "2008_000002.mat"), "Nope"));
        Assert.Contains("no variable 'Nope'", e2.Message);
    }

    [Fact]
    public void CorruptImageIsReportedWithPath()
    {
        string d = TestData.TempDir("img");
        string p = Path.Combine(d, "x.jpg");
        File.WriteAllBytes(p, [0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3]);
        var e = Assert.Throws<DataFileException>(() => ImageIo.LoadRgb(p, out _, out _));
        Assert.Contains(p, e.Message);
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void VocPaletteMapsBack()
    {
        Assert.Equal(((byte)128, (byte)0, (byte)0), ImageIo.VocColor(1));
        Assert.Equal(((byte)0, (byte)128, (byte)0), ImageIo.VocColor(2));
        Assert.Equal(((byte)224, (byte)224, (byte)192), ImageIo.VocColor(255));
    }
}
