using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class BufferPoolTests
{
    [Fact]
    public void BlocksAreReusedBySizeClass()
    {
        var pool = Devices.Cpu.Pool;
        var a = pool.Rent(1000);
        long inUse = pool.BytesInUse;
        var raw = a.Raw;
        a.Dispose();
        a.Dispose(); // a second return is ignored
        var b = pool.Rent(900); // same 1024-byte class
        Assert.Same(raw, b.Raw);
        Assert.Equal(inUse, pool.BytesInUse);
        b.Dispose();
        Assert.Throws<ObjectDisposedException>(() => b.Raw);
    }

    [Theory]
    [InlineData(1, 512)]
    [InlineData(513, 1024)]
    [InlineData(1 << 20, 1 << 20)]
    [InlineData((1 << 20) + 1, (1 << 20) + (1 << 17))]
    [InlineData(3_000_000, 3_145_728)]
    public void SizeClassesWasteAtMostAnEighth(long bytes, long expected)
    {
        Assert.Equal(expected, BufferPool.SizeClass(bytes));
        Assert.True(BufferPool.SizeClass(bytes) < bytes * 1.125 + 512);
    }

    [Fact]
    public void OutOfMemorySaysWhatWasAskedAndWhatIsInUse()
    {
        var pool = Devices.Cpu.Pool;
        long before = pool.BytesInUse;
        var e = Assert.Throws<OutOfMemoryException>(() => pool.Rent(1L << 52));
        Assert.Contains("asked for", e.Message);
        Assert.Contains("in use", e.Message);
        Assert.Equal(before, pool.BytesInUse); // nothing was taken
    }

    [Fact]
    public void ALimitMakesAnAllocationPastItFailLikeAFullDevice()
    {
        using var d = Device.CreateCpu();
        var pool = d.Pool;
        pool.LimitBytes = 1 << 20;
        var a = pool.Rent(600_000);
        a.Dispose();                        // cached: released to make room, not counted against the next
        var b = pool.Rent(700_000);
        var e = Assert.Throws<OutOfMemoryException>(() => pool.Rent(600_000));
        Assert.Contains("limit of 1.0 MiB", e.Message);
        b.Dispose();
        pool.Rent(600_000).Dispose();
    }
}
