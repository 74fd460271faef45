using System.Reflection;
using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Train.Cli;
using Ccr.Train.Commands;
using Ccr.Training.Data;
using Ccr.Tests.Data;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>Every error class has its exit code and a one-line message, and docs/guide/ERRORS.md lists every code.</summary>
public class ExitCodeTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "usage", ExitCodes.Usage }, { "data", ExitCodes.DataError }, { "nonfinite", ExitCodes.Diverged },
        { "checkpoint", ExitCodes.BadCheckpoint }, { "statedict", ExitCodes.BadCheckpoint }, { "oom", ExitCodes.OutOfMemory },
        { "disk", ExitCodes.IoError }, { "denied", ExitCodes.IoError }, { "aggregate", ExitCodes.IoError },
    };

    static Exception Make(string kind) => kind switch
    {
        "usage" => new UsageException("train.lr = -1: must be a finite number > 0"),
        "data" => new DataFileException("/d/x.png", "corrupt or unsupported image"),
        "nonfinite" => new NonFiniteException("training diverged", "total"),
        "checkpoint" => new CheckpointException("/r/last.ckpt: checkpoint not found"),
        "statedict" => new StateDictException("/r/last.ckpt: checkpoint does not match", new LoadReport { Source = "x" }),
        "oom" => new OutOfMemoryException("device out of memory"),
        "disk" => new IOException("No space left on device : '/r/metrics.csv'"),
        "denied" => new UnauthorizedAccessException("Access to the path '/r' is denied."),
        _ => new AggregateException(new IOException("No space left on device")),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EachErrorHasItsCodeAndOneLine(string kind, int code)
    {
        var (c, message) = Entry.Describe(Make(kind), "train");
        Assert.Equal(code, c);
        Assert.DoesNotContain("\n", message);
        Assert.DoesNotContain(" at ", message);
    }

    [Fact]
    public void DataErrorsOfTrainingSuggestSkippingBadSamples()
    {
        Assert.Contains("data.skip_bad=true", Entry.Describe(Make("data"), "train").Message);
        Assert.DoesNotContain("skip_bad", Entry.Describe(Make("data"), "eval").Message);
    }

    [Fact]
    public void ABugIsReportedWithItsTrace()
    {
        Exception e;
        try { throw new InvalidOperationException("unexpected"); } catch (Exception x) { e = x; }
        var (code, message) = Entry.Describe(e, "train");
        Assert.Equal(ExitCodes.InternalError, code);
        Assert.Contains("internal error", message);
        Assert.Contains(" at ", message);
    }

    [Fact]
    public void AnUnknownCommandIsAUsageError()
    {
        Cli.AssertError(Cli.Run("trian"), ExitCodes.Usage, "unknown command 'trian'");
        Cli.AssertError(Cli.Run("eval"), ExitCodes.Usage, "--checkpoint FILE is required");
        Cli.AssertError(Cli.Run("train", "--lr", "3"), ExitCodes.Usage, "unknown option --lr");
    }

    [Fact]
    public void EveryExitCodeIsDocumented()
    {
        string doc = File.ReadAllText(Path.Combine(TestData.RepoRoot, "docs", "guide", "ERRORS.md"));
        foreach (var f in typeof(ExitCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
            Assert.True(doc.Contains($"| {f.GetValue(null)} |"), $"exit code {f.Name} = {f.GetValue(null)} is not in docs/guide/ERRORS.md");
        Assert.Contains("docs/guide/ERRORS.md", File.ReadAllText(Path.Combine(TestData.RepoRoot, "README.md")));
    }
}
