using Ccr.Train.Commands;
using Ccr.Training.Data;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>Missing and truncated label files: one line naming the file, exit 1.</summary>
public class DataErrorTests : IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    (string Data, string Cache) TinyData()
    {
        string data = _tmp.Dir("data");
        return (data, SynthRooms.EnsureCached(data, 32, 32, 0, 12, 3));
    }

    [Fact]
    public void AMissingLabelFileStopsTheRunBeforeItsFolderIsMade()
    {
        var (data, cache) = TinyData();
        string victim = Path.Combine(cache, "depth", "train_000005.npy");
        File.Delete(victim);
        string run = Path.Combine(_tmp.Dir("run"), "run");
        var r = Cli.Run(Tiny.Train(data, run));
        Cli.AssertError(r, ExitCodes.DataError, victim, "does not exist", "data.skip_bad=true");
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void ATruncatedLabelFileStopsTheRunNamingTheFile()
    {
        var (data, cache) = TinyData();
        string victim = Path.Combine(cache, "segmentation", "train_000007.png");
        var bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, bytes[..(bytes.Length / 3)]);
        string run = Path.Combine(_tmp.Dir("run"), "run");
        Cli.AssertError(Cli.Run(Tiny.Train(data, run)), ExitCodes.DataError, victim, "data.skip_bad=true");
        Assert.False(File.Exists(Path.Combine(run, "last.ckpt")));
        // as the message says, the run goes through when bad samples may be skipped
        string run2 = Path.Combine(_tmp.Dir("run"), "run");
        var ok = Cli.Run(Tiny.Train(data, run2, "data.skip_bad=true"));
        Assert.True(ok.Code == 0, ok.Err);
    }

    [Fact]
    public void ATruncatedDepthArrayIsADataErrorToo()
    {
        var (data, cache) = TinyData();
        string victim = Path.Combine(cache, "depth", "train_000002.npy");
        var bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, bytes[..(bytes.Length - 50)]);
        Cli.AssertError(Cli.Run(Tiny.Train(data, Path.Combine(_tmp.Dir("run"), "run"))), ExitCodes.DataError, victim);
    }
}
