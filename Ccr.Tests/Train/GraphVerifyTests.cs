using Ccr.Bench.Verify;
using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>
/// The verify row that trains with CUDA graphs on and off (<see cref="GraphVerify"/>): which devices
/// get it, and that a graphed run which never replayed, or whose runner said something (a capture
/// failure, a fallback), fails the row. The row itself (minutes on the CPU accelerator's CUDA
/// variant) runs in <c>Ccr.Bench verify</c>; the bit-for-bit property it checks is tested here on a
/// smaller step by <see cref="StepGraphTests"/>.
/// </summary>
public class GraphVerifyTests
{
    [Fact]
    public void OnlyTheCudaVariantGetsTheRow()
    {
        var suite = new GraphVerify();
        Assert.Empty(suite.Cases(Devices.Cpu, small: false)); // host-code ops: nothing to capture
        var c = Assert.Single(suite.Cases(Devices.CudaOnCpu, small: true));
        Assert.Equal(0, c.Atol);
        Assert.Equal(0, c.Rtol); // bit for bit
    }

    [Fact]
    public void ARunThatNeverReplayedOrSaidSomethingFails()
    {
        StepMode E = StepMode.Eager, C = StepMode.Captured, R = StepMode.Replayed;
        GraphVerify.CheckModes([E, E, E, E], [E, C, E, R], []);
        Assert.Contains("no step was replayed", Assert.Throws<InvalidOperationException>(
            () => GraphVerify.CheckModes([E, E, E, E], [E, C, E, E], [])).Message);
        Assert.Contains("capture failed", Assert.Throws<InvalidOperationException>(
            () => GraphVerify.CheckModes([E, E, E, E], [E, E, E, E], ["CUDA graphs off: capture failed (...)"])).Message);
        Assert.Contains("cuda_graph=false", Assert.Throws<InvalidOperationException>(
            () => GraphVerify.CheckModes([E, R, E, E], [E, C, E, R], [])).Message);
    }
}
