using Ccr.Kernels;

namespace Ccr.Bench.Verify;

/// <summary>
/// One kernel run on one shape, compared with its float64 reference by the project's tolerance rule
/// |ref - got| &lt;= atol + rtol * |ref|. <see cref="Run"/> returns the reference and the kernel's
/// output (flattened; several outputs may be concatenated).
/// </summary>
public sealed record VerifyCase(string Kernel, string Shape, double Atol, double Rtol,
                                Func<Device, (double[] Expected, float[] Actual)> Run);

/// <summary>A family of kernels (conv, batch norm, CCR, ...) that lists its cases for a device.
/// <paramref name="small"/> is true where barriers are slow (the CUDA variant on the CPU
/// accelerator): keep shapes tiny there. Suites are found by reflection.</summary>
public interface IVerifySuite
{
    string Family { get; }
    IEnumerable<VerifyCase> Cases(Device device, bool small);
}
