using Ccr.Bench.Verify;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// On a machine with a CUDA device: every verify case of every kernel family, at realistic and
/// awkward shapes, against its float64 reference on the GPU. Skipped (not passed) without one;
/// CI has none, so on CI the CUDA variants are covered by the CPU-accelerator tests instead.
/// </summary>
public class GpuVerifyTests
{
    [SkippableFact]
    public void EveryKernelFamilyMatchesItsReferenceOnTheGpu()
    {
        Skip.If(Devices.Gpu == null, "no CUDA device");
        var d = Devices.Gpu!;
        var suites = typeof(IVerifySuite).Assembly.GetTypes()
            .Where(t => typeof(IVerifySuite).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (IVerifySuite)Activator.CreateInstance(t)!).ToList();
        Assert.NotEmpty(suites);
        foreach (var s in suites)
            foreach (var c in s.Cases(d, small: false))
            {
                var (expected, actual) = c.Run(d);
                Tol.Close(expected, actual, c.Atol, c.Rtol, $"{s.Family}/{c.Kernel} {c.Shape}");
            }
    }

    [Fact]
    public void EveryFamilyHasAVerifySuite()
    {
        var families = typeof(IVerifySuite).Assembly.GetTypes()
            .Where(t => typeof(IVerifySuite).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => ((IVerifySuite)Activator.CreateInstance(t)!).Family).ToHashSet();
        foreach (var f in new[] { "elementwise", "conv", "norm", "loss", "ccr" }) Assert.Contains(f, families);
    }
}
