using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class BufferPoolTests
{
    [Fact]
    public void BlocksAreReusedBySizeClass()
    {
        using var d = Device.CreateCpu();
        var pool = d.Pool;
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

    [Fact]
    public void RequestsTakeTheLowestIdFreeBlockWhateverTheReturnOrder()
    {
        using var d = Device.CreateCpu();
        var pool = d.Pool;
        var a = pool.Rent(3000);
        var b = pool.Rent(3000);
        var c = pool.Rent(20_000); // another class: does not interfere
        long[] ids = [a.Id, b.Id];
        Assert.Equal(3, pool.Allocations);
        foreach (var order in new[] { new[] { 0, 1 }, [1, 0] })
        {
            PooledBlock[] held = [a, b];
            foreach (int i in order) held[i].Dispose(); // returned in either order ...
            a = pool.Rent(2900);
            b = pool.Rent(3000);
            Assert.Equal(ids, new[] { a.Id, b.Id });      // ... handed out in id order: a step's addresses repeat
        }
        Assert.Equal(3, pool.Allocations);                 // no growth
        Assert.True(pool.Matches([new BufferPool.BlockState(a.Id, true, 3), new BufferPool.BlockState(c.Id, true, 1)]));
        long rentsOfA = pool.StateOf(a.Id)!.Value.Rents;
        a.Dispose();
        Assert.False(pool.Matches([new BufferPool.BlockState(a.Id, true, rentsOfA)])); // returned: not its holder's any more
        Assert.True(pool.Matches([new BufferPool.BlockState(a.Id, false, 0)]));
        pool.GrowthForbiddenBy = "a test";
        pool.Rent(3000).Dispose(); // a free block: fine
        var e = Assert.Throws<PoolGrowthException>(() => pool.Rent(1 << 22)); // its own type: StepGraphs retries on it
        Assert.Contains("during a test", e.Message);
        Assert.Equal(BufferPool.SizeClass(1 << 22), e.Bytes);
        pool.GrowthForbiddenBy = null;
        long releases = pool.Releases;
        pool.ReleaseCached();
        Assert.Equal(releases + 1, pool.Releases);
        Assert.Null(pool.StateOf(a.Id)); // given back to the device
        b.Dispose(); c.Dispose();
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
