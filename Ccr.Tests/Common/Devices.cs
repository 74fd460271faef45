using Ccr.Kernels;
using Xunit;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Ccr.Tests.Common;

/// <summary>
/// The devices tests run on, created once per test run (an ILGPU context is costly to make).
/// <see cref="Cpu"/> runs the CPU variants; <see cref="CudaOnCpu"/> runs the CUDA variants' kernels
/// on the CPU accelerator with 256-thread groups, so their indexing, barriers and shared memory are
/// checked in CI (tiny shapes only: barriers are slow there). <see cref="Gpu"/> is a real CUDA
/// device or null; tests that need it call <c>Skip.If(Devices.Gpu == null, ...)</c>.
/// </summary>
public static class Devices
{
    static readonly Lazy<Device> _cpu = new(() => Device.CreateCpu(KernelVariant.Cpu));
    static readonly Lazy<Device> _cudaOnCpu = new(() => Device.CreateCpu(KernelVariant.Cuda));
    static readonly Lazy<Device?> _gpu = new(() =>
    {
        try { var d = Device.Create("cuda", verbose: false); return d; }
        catch (Exception) { return null; }
    });

    public static Device Cpu => _cpu.Value;
    public static Device CudaOnCpu => _cudaOnCpu.Value;
    public static Device? Gpu => _gpu.Value;

    /// <summary>Both variants, for [Theory] [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))].</summary>
    public static TheoryData<string> Both => new() { "cpu", "cuda-on-cpu" };

    public static Device Get(string name) => name switch
    {
        "cpu" => Cpu,
        "cuda-on-cpu" => CudaOnCpu,
        _ => throw new ArgumentException($"unknown test device '{name}'"),
    };
}
