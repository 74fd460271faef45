using System.Runtime.InteropServices;
using Ccr.Kernels;
using Ccr.Train.Cli;
using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary>Opening the device for a command: a device choice that cannot be met is a usage
/// error; <c>CCR_DEVICE</c> replaces a config's <c>auto</c>; the buffer pool is capped by
/// <c>CCR_MEMORY_LIMIT_MB</c>, and on the CPU device by the host memory budget
/// (<see cref="HostMemory"/>).</summary>
public static class CommandDevice
{
    /// <summary>The device a config's <c>device</c> key asks for.</summary>
    public static Device Open(Training.Config.DeviceChoice choice, bool verbose = true, int cudaOrdinal = 0) =>
        Open(Training.Config.ConfigEnums.ConfigWord(choice), verbose, cudaOrdinal);

    /// <summary>The device a word asks for: cuda, cpu or auto (null or blank: auto), as --device gives it.</summary>
    public static Device Open(string? choice, bool verbose = true, int cudaOrdinal = 0)
    {
        string resolved = Choice(choice, Environment.GetEnvironmentVariable("CCR_DEVICE"));
        var budget = HostMemory.Budget(); // a bad CCR_MEMORY_LIMIT_MB stops before the device opens
        Device d;
        try { d = Device.Create(resolved, verbose, cudaOrdinal); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new UsageException($"device: {e.Message}");
        }
        if (budget is var (bytes, source))
        {
            // [distributed] the ranks of one machine share its memory
            if (source != "CCR_MEMORY_LIMIT_MB" && Training.DataParallel.Launcher.Current is { LocalSize: > 1 } ranks)
                bytes /= ranks.LocalSize;
            // the CPU device's memory is the host's: its pool takes a share, the host arrays the rest
            if (source == "CCR_MEMORY_LIMIT_MB") d.Pool.LimitBytes = bytes;
            else if (!d.IsCuda)
            {
                d.Pool.LimitBytes = (long)(bytes * HostMemory.PoolShare);
                if (verbose) Console.WriteLine($"host memory budget: {HostMemory.Mib(bytes)} ({source}); the CPU device's buffers may take " +
                                               $"{HostMemory.Mib(d.Pool.LimitBytes.Value)} (CCR_MEMORY_LIMIT_MB overrides)");
            }
        }
        return d;
    }

    /// <summary>
    /// The device to open: the command's / config's choice, except that <c>auto</c> (or none) gives
    /// way to <c>CCR_DEVICE</c> (so <c>mpirun -x CCR_DEVICE=cpu</c> works with a config that says
    /// auto); --device and an explicit config device win over it. An unknown value of either is a
    /// usage error naming it.
    /// </summary>
    public static string Choice(string? configured, string? env)
    {
        static string? Norm(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim().ToLowerInvariant();
        string? c = Norm(configured), e = Norm(env);
        if (e != null && e is not ("auto" or "cuda" or "cpu"))
            throw new UsageException($"CCR_DEVICE must be cuda, cpu or auto, got '{env}'");
        if (c != null && c is not ("auto" or "cuda" or "cpu"))
            throw new UsageException($"device must be cuda, cpu or auto, got '{configured}'");
        return c is null or "auto" ? e ?? "auto" : c;
    }
}

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM during a run. Once a trainer is attached, the first asks it to stop
/// after the current step and write last.ckpt; a second Ctrl-C or SIGTERM ends the process at once
/// (the last checkpoint stays whole: writes are atomic). Before that (data generation, building the
/// model, loading a checkpoint) there is nothing to save: the signal says so on one line and ends
/// the process as the signal does by default (exit status 130 / 143); SynthRooms data cut short is
/// generated again by the next run.
/// </summary>
public sealed class StopSignals : IDisposable
{
    readonly List<PosixSignalRegistration> _registrations = new();
    volatile Trainer? _trainer;
    int _count;

    public StopSignals(Trainer? trainer = null)
    {
        _trainer = trainer;
        foreach (var (signal, name) in new[] { (PosixSignal.SIGINT, "Ctrl-C"), (PosixSignal.SIGTERM, "SIGTERM") })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                if (Interlocked.Increment(ref _count) > 1) return; // default action: the process ends
                if (_trainer is not { } t)
                {
                    Console.Out.Flush();
                    Console.Error.WriteLine($"{name} before the first training step (while preparing data or the model): " +
                                            "stopped, no step was trained and no checkpoint written");
                    return; // default action: exit status 128 + signal
                }
                ctx.Cancel = true;
                Console.Error.WriteLine($"{name}: finishing the current step and writing last.ckpt (again to quit at once) ...");
                t.RequestStop(name);
            }));
        }
    }

    /// <summary>From now on a signal stops <paramref name="trainer"/> after its current step.</summary>
    public void Attach(Trainer trainer) => _trainer = trainer;

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
