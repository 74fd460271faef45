using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The CUDA driver lookup for ILGPU (<see cref="CudaLibrary"/>): the names tried and their order as a
/// pure function, the resolver's choice with a fake loader (a machine with only libcuda.so.1 is
/// simulated), and on this machine the whole path: <c>auto</c> without a driver falls back to the
/// CPU and its device line says which names were tried.
/// </summary>
public class CudaLibraryTests
{
    [Fact]
    public void IlgpusCudaImportTriesTheUnversionedNameThenTheDriversSoname()
    {
        Assert.Equal(["libcuda.so", "libcuda.so.1"], CudaLibrary.Candidates("cuda", isLinux: true));
        Assert.Empty(CudaLibrary.Candidates("cuda", isLinux: false)); // Windows: ILGPU imports nvcuda, found as is
        Assert.Empty(CudaLibrary.Candidates("nvml", isLinux: true)); // not ours to resolve
    }

    [Fact]
    public void OnlyTheSonameExisting_ResolvesToIt()
    {
        var tried = new List<(string, bool)>();
        var h = CudaLibrary.Resolve("cuda", true, name => name == "libcuda.so.1" ? 42 : IntPtr.Zero, (n, ok) => tried.Add((n, ok)));
        Assert.Equal(42, h);
        Assert.Equal([("libcuda.so", false), ("libcuda.so.1", true)], tried);
    }

    [Fact]
    public void TheUnversionedNameWinsWhenItExists_AndNothingLoadsForOtherLibraries()
    {
        var tried = new List<string>();
        Assert.Equal(7, CudaLibrary.Resolve("cuda", true, name => name == "libcuda.so" ? 7 : 9, (n, _) => tried.Add(n)));
        Assert.Equal(["libcuda.so"], tried);
        Assert.Equal(IntPtr.Zero, CudaLibrary.Resolve("cuda", true, _ => IntPtr.Zero)); // none: .NET's default probing
        Assert.Equal(IntPtr.Zero, CudaLibrary.Resolve("cublas", true, _ => throw new InvalidOperationException("must not load")));
    }

    [SkippableFact]
    public void AutoWithoutADriver_FallsBackToTheCpuAndSaysWhatItTried()
    {
        Skip.If(Devices.Gpu != null, "this machine has a CUDA device");
        using var d = Device.Create("auto", verbose: false);
        Assert.False(d.IsCuda);
        Assert.NotNull(d.NoCudaReason);
        if (OperatingSystem.IsLinux() && !File.Exists("/usr/lib/wsl/lib/libcuda.so.1"))
            Assert.Contains("libcuda.so.1", d.NoCudaReason);
        var e = Assert.Throws<InvalidOperationException>(() => Device.Create("cuda", verbose: false));
        Assert.Contains("no CUDA device", e.Message);
    }
}
