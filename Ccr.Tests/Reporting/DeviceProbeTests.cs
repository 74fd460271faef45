using System.Diagnostics;
using Ccr.Bench.Report;
using Ccr.Tests.Common;
using Ccr.Tests.Data;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>
/// The GPU report's first check: <c>Ccr.Bench device --require cuda</c> fails on a machine without
/// a CUDA device, and <c>tools/gpu_report.sh OUT</c> (GPU mode) stops on it at once, with one line
/// saying why and a non-zero exit, before any part has run (skipped where a GPU exists).
/// </summary>
public class DeviceProbeTests
{
    [SkippableFact]
    public void RequireCuda_FailsWithoutACudaDevice()
    {
        Skip.If(Devices.Gpu != null, "this machine has a CUDA device");
        Assert.Equal(DeviceProbe.NotCuda, DeviceProbe.Run(["--require", "cuda"]));
        Assert.Equal(0, DeviceProbe.Run([]));
        Assert.Equal(2, DeviceProbe.Run(["--require", "tpu"]));
    }

    [SkippableFact]
    public void GpuReport_WithoutACudaDevice_StopsBeforeAnyPart()
    {
        Skip.If(Devices.Gpu != null, "this machine has a CUDA device");
        Skip.If(!OperatingSystem.IsLinux(), "bash script");
        string dll = BenchDll();
        Skip.If(!File.Exists(dll), $"no built Ccr.Bench at {dll}");
        string out_ = Path.Combine(Path.GetTempPath(), "ccr-report-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            var psi = new ProcessStartInfo("bash", [Path.Combine(TestData.RepoRoot, "tools", "gpu_report.sh"), out_])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["CCR_BENCH"] = $"dotnet {dll}";
            psi.Environment.Remove("CCR_DEVICE");
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(120_000), "gpu_report.sh did not stop");
            Assert.Equal(3, p.ExitCode);
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines);
            Assert.Contains("no CUDA device, nothing measured", lines[0]);
            Assert.Contains("CUDA device is required", lines[0]);
            Assert.False(File.Exists(Path.Combine(out_, "verify.log")), "a part ran: " + stdout.Result);
            Assert.False(File.Exists(Path.Combine(out_, "meta.txt")));
        }
        finally { if (Directory.Exists(out_)) Directory.Delete(out_, true); }
    }

    /// <summary>The Ccr.Bench build next to this test binary (a referenced executable brings its
    /// runtimeconfig), else the solution's Release build.</summary>
    static string BenchDll()
    {
        string here = Path.Combine(AppContext.BaseDirectory, "Ccr.Bench.dll");
        return File.Exists(Path.Combine(AppContext.BaseDirectory, "Ccr.Bench.runtimeconfig.json"))
            ? here : Path.Combine(TestData.RepoRoot, "Ccr.Bench", "bin", "Release", "net10.0", "Ccr.Bench.dll");
    }
}
