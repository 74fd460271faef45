using Ccr.Kernels;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench device [--require cuda]</c>: prints the accelerator that <c>auto</c> (or
/// CCR_DEVICE) picks, in one line, and why it is not CUDA when it is not (the driver names tried).
/// With <c>--require cuda</c> it exits 3 unless that accelerator is a CUDA device: the GPU report's
/// first check, so a run on a machine whose driver ILGPU cannot reach fails in its first seconds
/// instead of timing the CPU accelerator for minutes.
/// </summary>
public static class DeviceProbe
{
    public const int NotCuda = 3;

    public static int Run(string[] args)
    {
        bool requireCuda = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--require" && i + 1 < args.Length && args[i + 1] == "cuda") { requireCuda = true; i++; }
            else
            {
                Console.Error.WriteLine($"device: unknown argument '{args[i]}' (usage: Ccr.Bench device [--require cuda])");
                return 2;
            }
        }
        Device d;
        try { d = Device.Create(verbose: false); }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            Console.WriteLine($"device: none ({e.Message})");
            return requireCuda ? NotCuda : 1;
        }
        using (d)
        {
            Console.WriteLine($"device: {d}" + (d.NoCudaReason is { } why ? $" ({why})" : ""));
            if (!requireCuda || d.IsCuda) return 0;
            Console.WriteLine("device: a CUDA device is required here, and this is " + d.Accelerator.AcceleratorType +
                              (Environment.GetEnvironmentVariable("CCR_DEVICE") is { Length: > 0 } env ? $" (CCR_DEVICE={env})" : ""));
            return NotCuda;
        }
    }
}
