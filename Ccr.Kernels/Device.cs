using Ccr.Kernels.Ops;
using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels;

/// <summary>Which implementation of a hot op runs: tiled shared-memory kernels for GPUs, or
/// barrier-free host / grid-stride code for the CPU accelerator (see docs/DESIGN.md: a barrier costs
/// ~0.4 ms there, so GPU-style kernels are ~1000x slower on the CPU).</summary>
public enum KernelVariant { Cuda, Cpu }

/// <summary>
/// One accelerator with everything bound to it: the ILGPU context, the kernel cache, the buffer
/// pool and the choice of kernel variant. Chosen once: CUDA when a CUDA device exists, else the CPU
/// accelerator; <c>CCR_DEVICE=cpu|cuda</c> overrides.
/// </summary>
public sealed class Device : IDisposable
{
    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public KernelVariant Variant { get; }
    public BufferPool Pool { get; }
    /// <summary>Every kernel launch passes through here: counted, and recorded or captured on request.</summary>
    internal LaunchLog Launches { get; }
    /// <summary>The stream every launch (<see cref="Launch.Load{T1}"/>'s launchers read it at each
    /// launch), host copy and memset of this device is issued on: the accelerator's default stream
    /// until <see cref="SwitchStream"/> (a CUDA graph capture needs a created stream: the legacy null
    /// stream cannot be captured).</summary>
    public AcceleratorStream Stream { get; private set; }
    /// <summary>Multiprocessors the GEMM tile chooser plans for (whether to split K, the split sum's
    /// grid): the accelerator's, unless the device was created to plan for another card
    /// (<c>Ccr.Bench launches</c> counts on the CPU as an H100 would split).</summary>
    public int Multiprocessors { get; }
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;
    /// <summary>Why <see cref="Create"/> fell back to the CPU although CUDA was allowed: "no CUDA
    /// device" and what the driver lookup tried (<see cref="CudaLibrary.Report"/>); null otherwise.</summary>
    public string? NoCudaReason { get; private set; }
    /// <summary>True when buffers are host memory (CPU accelerator), so CPU variants may use pointers.</summary>
    public bool IsHostMemory => Accelerator.AcceleratorType == AcceleratorType.CPU;

    /// <summary>Threads per group for 1-D launches: the largest multiple of the warp size up to 256
    /// that the accelerator allows.</summary>
    public int GroupSize { get; }
    /// <summary>Groups for a grid-stride 1-D launch that fills the device.</summary>
    public int GridGroups { get; }

    readonly ConcurrentDictionary<Type, object> _kernels = new();
    bool _disposed;

    Device(Context context, Accelerator accelerator, KernelVariant variant, int? planMultiprocessors = null)
    {
        Context = context;
        Accelerator = accelerator;
        Variant = variant;
        Stream = accelerator.DefaultStream;
        Multiprocessors = planMultiprocessors ?? accelerator.NumMultiprocessors;
        int warp = Math.Max(1, accelerator.WarpSize);
        int maxGroup = Math.Min(256, accelerator.MaxNumThreadsPerGroup);
        GroupSize = Math.Max(warp, maxGroup / warp * warp);
        GridGroups = Math.Max(1, accelerator.NumMultiprocessors *
            Math.Max(1, accelerator.MaxNumThreadsPerMultiprocessor / GroupSize));
        Pool = new BufferPool(accelerator, () => Stream);
        Launches = new LaunchLog(Pool);
    }

    /// <summary>
    /// ILGPU's optimisation level for CUDA kernels: O2. Read with <c>Ccr.Bench sass</c>, the level is a trade:
    /// at O2 ILGPU places every load of a basic block ahead of its arithmetic, so a fully unrolled GEMM stage
    /// would hold all 16 k rows' operands at once and spill (the fp32 kernels step two rows per loop iteration
    /// instead); at O1 that stage compiles without spills and issues ~5 points more FFMA, but O1 leaves the
    /// TF32 kernel's inline-PTX operands (Ref locals) in local memory, hundreds of LDL/STL per stage. The SASS
    /// report compiles with the same level.
    /// </summary>
    public const OptimizationLevel CudaOptimization = OptimizationLevel.O2;

    /// <summary>The device chosen by <c>CCR_DEVICE</c> (or <paramref name="choice"/>): "cuda", "cpu",
    /// or automatic. Prints which device it uses when <paramref name="verbose"/>. With several
    /// CUDA devices, <paramref name="cudaOrdinal"/> (modulo their count) picks one: a data-parallel
    /// rank passes its local rank, so each process of a machine gets its own GPU.</summary>
    public static Device Create(string? choice = null, bool verbose = true, int cudaOrdinal = 0)
    {
        choice ??= Environment.GetEnvironmentVariable("CCR_DEVICE");
        choice = string.IsNullOrWhiteSpace(choice) ? "auto" : choice.Trim().ToLowerInvariant();
        if (choice is not ("auto" or "cuda" or "cpu"))
            throw new ArgumentException($"CCR_DEVICE / --device must be cuda, cpu or auto, got '{choice}'");
        Device d;
        string? noCuda = null;
        if (choice != "cpu")
        {
            CudaLibrary.Install(); // before the first Context: ILGPU binds its driver imports once
            var ctx = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(CudaOptimization));
            var cuda = ctx.GetCudaDevices();
            if (cuda.Count > 0)
                d = new Device(ctx, cuda[Math.Abs(cudaOrdinal) % cuda.Count].CreateAccelerator(ctx), KernelVariant.Cuda);
            else
            {
                ctx.Dispose();
                noCuda = "no CUDA device; " + CudaLibrary.Report();
                if (choice == "cuda")
                    throw new InvalidOperationException($"CCR_DEVICE=cuda, but no CUDA device was found ({noCuda})");
                d = CreateCpu();
            }
        }
        else d = CreateCpu();
        d.NoCudaReason = noCuda;
        if (verbose) Console.WriteLine($"Ccr device: {d}" + (noCuda != null ? $" ({noCuda})" : ""));
        return d;
    }

    /// <summary>
    /// A CPU-accelerator device. With <see cref="KernelVariant.Cpu"/>: 2 threads per group, 1 group
    /// per multiprocessor, one multiprocessor per core (fast for grid-stride kernels). With
    /// <see cref="KernelVariant.Cuda"/>: 256 threads per group, so the GPU kernels' barriers and
    /// shared memory can be tested (slow; tiny shapes only). <paramref name="planMultiprocessors"/>:
    /// the <see cref="Multiprocessors"/> the GEMM tile chooser plans for, when not the accelerator's
    /// (counting launches as a GPU of that many SMs would issue them; any grid runs on the CPU).
    /// </summary>
    public static Device CreateCpu(KernelVariant variant = KernelVariant.Cpu, int? planMultiprocessors = null) =>
        variant == KernelVariant.Cpu
            ? CreateCpu(2, 1, Math.Max(1, Environment.ProcessorCount), variant, planMultiprocessors)
            : CreateCpu(32, 8, 1, variant, planMultiprocessors);

    /// <summary>A CPU-accelerator device of <paramref name="warpsPerGroup"/> warps of
    /// <paramref name="threadsPerWarp"/> lanes (tests of warp-level code on several shapes).</summary>
    public static Device CreateCpu(int threadsPerWarp, int warpsPerGroup, int multiprocessors, KernelVariant variant,
                                   int? planMultiprocessors = null)
    {
        if (planMultiprocessors is <= 0) throw new ArgumentOutOfRangeException(nameof(planMultiprocessors), $"{planMultiprocessors} multiprocessors");
        var cpu = new CPUDevice(threadsPerWarp, warpsPerGroup, multiprocessors);
        var ctx = Context.Create(b => b.CPU(cpu).EnableAlgorithms().Optimize(OptimizationLevel.O2));
        return new Device(ctx, cpu.CreateAccelerator(ctx), variant, planMultiprocessors);
    }

    /// <summary>Kernel launchers of one op family, loaded once per accelerator and cached.</summary>
    public T Kernels<T>(Func<Device, T> load) where T : class
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return (T)_kernels.GetOrAdd(typeof(T), _ => load(this));
    }

    /// <summary>Waits for everything issued to the accelerator, on any stream.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>Makes <paramref name="stream"/> the device's <see cref="Stream"/> from now on, for
    /// kernels loaded before as well. Waits for the work already issued first, so nothing on the
    /// old stream races the new one. The device owns a stream it is given and disposes it when it
    /// switches away or is disposed (never the accelerator's default stream, which ILGPU owns).</summary>
    public void SwitchStream(AcceleratorStream stream)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(stream);
        if (ReferenceEquals(stream, Stream)) return;
        if (stream.Accelerator != Accelerator) throw new ArgumentException("a stream of another accelerator", nameof(stream));
        Synchronize();
        var old = Stream;
        Stream = stream;
        if (!ReferenceEquals(old, Accelerator.DefaultStream)) old.Dispose();
    }

    public override string ToString() =>
        $"{Accelerator.Name} ({Accelerator.AcceleratorType}, {Variant} kernels, " +
        $"{Accelerator.MemorySize / (1 << 20)} MiB, group {GroupSize})";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Pool.Dispose();
        if (!ReferenceEquals(Stream, Accelerator.DefaultStream)) Stream.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}
