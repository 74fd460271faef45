using Ccr.Training;
using Ccr.Training.DataParallel;
using Xunit;

namespace Ccr.Tests.Distributed;

/// <summary><c>CCR_FAULT</c> (the data-parallel tests' fault hook) parsed once into a typed value,
/// with the messages a malformed value always had.</summary>
public class FaultInjectionTests
{
    [Theory]
    [InlineData("1:4:kill", 1, 4L, FaultKind.Kill)]
    [InlineData("0:0:throw", 0, 0L, FaultKind.Throw)]
    [InlineData("3:12:oom", 3, 12L, FaultKind.Oom)]
    [InlineData("1:1:hang", 1, 1L, FaultKind.Hang)]
    public void AWellFormedValueIsParsed(string spec, int rank, long step, FaultKind kind) =>
        Assert.Equal(new FaultInjection(rank, step, kind), FaultInjection.Parse(spec));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void UnsetOrEmptyIsNoFault(string? spec) => Assert.Null(FaultInjection.Parse(spec));

    [Theory]
    [InlineData("1:4", "CCR_FAULT must be RANK:STEP:KIND (kill, throw, oom or hang), got '1:4'")]
    [InlineData("x:4:kill", "CCR_FAULT must be RANK:STEP:KIND (kill, throw, oom or hang), got 'x:4:kill'")]
    [InlineData("1:4:explode", "CCR_FAULT kind must be kill, throw, oom or hang, got 'explode'")]
    public void AMalformedValueSaysWhatIsExpected(string spec, string message) =>
        Assert.Equal(message, Assert.Throws<ConfigException>(() => FaultInjection.Parse(spec)).Message);

    [Fact]
    public void OnlyItsRankAndStepFail()
    {
        var f = new FaultInjection(1, 3, FaultKind.Throw);
        f.Strike(0, 3); f.Strike(1, 2); f.Strike(1, 4); // other ranks and steps: nothing
        var e = Assert.Throws<InvalidOperationException>(() => f.Strike(1, 3));
        Assert.Equal("injected fault at step 3 (CCR_FAULT)", e.Message);
        Assert.Throws<OutOfMemoryException>(() => (f with { Kind = FaultKind.Oom }).Strike(1, 3));
    }
}
