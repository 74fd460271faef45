using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The trainer's one upload per step (<see cref="StepUpload"/>): float and int destinations of
/// awkward lengths, filled through the pinned slots over several steps (both slots, each reused),
/// arrive exactly; a step that forbids host copies cannot commit; bad destinations are named.
/// </summary>
public class StepUploadTests
{
    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void SeveralStepsArriveExactlyThroughBothSlots(string device)
    {
        var d = Devices.Get(device);
        using var a = d.Pool.Rent(37 * 4);
        using var b = d.Pool.Rent(300 * 4);
        using var c2 = d.Pool.Rent(5 * 4);
        var fa = new Buf<float>(a, 0, 37);
        var ib = new Buf<int>(b, 0, 300);
        var window = new Buf<float>(c2, 1, 3); // an offset window: the values around it must stay
        new Buf<float>(c2, 0, 5).CopyFrom([-1f, -2f, -3f, -4f, -5f]);
        using var up = new StepUpload(d, [StepUpload.Bytes(fa), StepUpload.Bytes(ib), StepUpload.Bytes(window)]);
        Assert.Equal(256 + 1280 + 256, up.SlotBytes); // each destination 256-byte aligned
        long copies = HostCopies.Total;
        for (int k = 0; k < 5; k++)
        {
            var r = Rand.New(40 + k);
            var x = Rand.Floats(r, 37);
            var y = Rand.Ints(r, 300, 1000);
            var z = Rand.Floats(r, 3);
            x.AsSpan().CopyTo(up.Host<float>(0));
            y.AsSpan().CopyTo(up.Host<int>(1));
            z.AsSpan().CopyTo(up.Host<float>(2));
            up.Commit();
            d.Synchronize();
            Assert.Equal(x, fa.ToArray());
            Assert.Equal(y, ib.ToArray());
            Assert.Equal([-1f, .. z, -5f], new Buf<float>(c2, 0, 5).ToArray());
        }
        Assert.Equal(5, up.Commits);
        Assert.Equal(5 + 5 * 3, HostCopies.Total - copies); // one per commit, plus the three read-backs of each step
    }

    [Fact]
    public void ACommitInsideAStepThatForbidsCopiesThrows_AndBadDestinationsAreNamed()
    {
        var d = Devices.Cpu;
        using var a = d.Pool.Rent(64);
        using var up = new StepUpload(d, [StepUpload.Bytes(new Buf<float>(a, 0, 16))]);
        using (HostCopies.Forbid("a captured step"))
            Assert.Contains("a captured step", Assert.Throws<InvalidOperationException>(up.Commit).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => up.Host<float>(1));
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new StepUpload(d, [StepUpload.Bytes(new Buf<float>(a, 0, 0))])).Message);
    }
}
