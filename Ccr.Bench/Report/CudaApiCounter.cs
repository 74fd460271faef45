using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Ccr.Bench.Report;

/// <summary>
/// Counts CUDA driver calls (kernel launches, copies, memsets, synchronisations, allocations) made
/// by this process while it is on, through CUPTI's callback API: ILGPU has no hook of its own, and
/// every ILGPU launch is one <c>cuLaunchKernel</c>. CUPTI ships with the CUDA toolkit
/// (extras/CUPTI/lib64) and with PyTorch's CUDA wheels (nvidia-cuda-cupti); tools/gpu_report.sh
/// finds the library and passes its path. The callback compares the driver function's name at
/// API entry (CUpti_CallbackData: int callbackSite, then const char* functionName), so no table of
/// callback ids is needed. Only one CUPTI subscriber may exist per process; this is it.
/// Counting costs time per call: turn it on for a separate, untimed step.
/// </summary>
public sealed unsafe class CudaApiCounter : IDisposable
{
    const int DriverApiDomain = 1; // CUPTI_CB_DOMAIN_DRIVER_API
    const int ApiEnter = 0;        // CUPTI_API_ENTER

    static long _launches, _graphLaunches, _copies, _memsets, _syncs, _allocs, _frees, _other;

    readonly nint _lib;
    readonly nint _subscriber;
    readonly delegate* unmanaged[Cdecl]<uint, nint, int, int> _enableDomain; // (enable, subscriber, domain)
    readonly delegate* unmanaged[Cdecl]<nint, int> _unsubscribe;
    bool _disposed;

    public sealed record Counts(long Launches, long GraphLaunches, long Copies, long Memsets, long Syncs, long Allocs, long Frees, long Other);

    CudaApiCounter(nint lib, nint subscriber, nint enable, nint unsubscribe)
    {
        _lib = lib;
        _subscriber = subscriber;
        _enableDomain = (delegate* unmanaged[Cdecl]<uint, nint, int, int>)enable;
        _unsubscribe = (delegate* unmanaged[Cdecl]<nint, int>)unsubscribe;
    }

    /// <summary>Loads CUPTI from <paramref name="path"/> and subscribes (counting off). Null, with
    /// the reason, when the library is missing or refuses.</summary>
    public static CudaApiCounter? TryCreate(string? path, out string why)
    {
        why = "";
        if (string.IsNullOrEmpty(path)) { why = "no CUPTI library given (--cupti PATH)"; return null; }
        if (!NativeLibrary.TryLoad(path, out var lib)) { why = $"cannot load CUPTI from {path}"; return null; }
        if (!NativeLibrary.TryGetExport(lib, "cuptiSubscribe", out var subscribe) ||
            !NativeLibrary.TryGetExport(lib, "cuptiEnableDomain", out var enable) ||
            !NativeLibrary.TryGetExport(lib, "cuptiUnsubscribe", out var unsubscribe))
        {
            why = $"{path} lacks cuptiSubscribe / cuptiEnableDomain / cuptiUnsubscribe";
            return null;
        }
        nint handle;
        delegate* unmanaged[Cdecl]<nint, int, uint, nint, void> cb = &OnApi;
        int rc = ((delegate* unmanaged[Cdecl]<nint*, nint, nint, int>)subscribe)(&handle, (nint)cb, 0);
        if (rc != 0) { why = $"cuptiSubscribe returned {rc}"; return null; }
        return new CudaApiCounter(lib, handle, enable, unsubscribe);
    }

    /// <summary>Counts the driver calls made by <paramref name="action"/>.</summary>
    public Counts Count(Action action)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _launches = _graphLaunches = _copies = _memsets = _syncs = _allocs = _frees = _other = 0;
        int rc = _enableDomain(1, _subscriber, DriverApiDomain);
        if (rc != 0) throw new InvalidOperationException($"cuptiEnableDomain returned {rc}");
        try { action(); }
        finally { _enableDomain(0, _subscriber, DriverApiDomain); }
        return new Counts(_launches, _graphLaunches, _copies, _memsets, _syncs, _allocs, _frees, _other);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    static void OnApi(nint userdata, int domain, uint cbid, nint cbdata)
    {
        if (cbdata == 0 || *(int*)cbdata != ApiEnter) return;
        var namePtr = *(byte**)((byte*)cbdata + sizeof(nint)); // functionName follows the int site, pointer-aligned
        if (namePtr == null) return;
        Classify(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(namePtr));
    }

    /// <summary>Sorts one driver function name into a counter (public for the tests).</summary>
    public static void Classify(ReadOnlySpan<byte> name)
    {
        if (name.StartsWith("cuLaunch"u8)) Interlocked.Increment(ref _launches);
        else if (name.StartsWith("cuGraphLaunch"u8)) Interlocked.Increment(ref _graphLaunches);
        else if (name.StartsWith("cuMemcpy"u8)) Interlocked.Increment(ref _copies);
        else if (name.StartsWith("cuMemset"u8)) Interlocked.Increment(ref _memsets);
        else if (name.StartsWith("cuStreamSynchronize"u8) || name.StartsWith("cuCtxSynchronize"u8) ||
                 name.StartsWith("cuEventSynchronize"u8)) Interlocked.Increment(ref _syncs);
        else if (name.StartsWith("cuMemAlloc"u8)) Interlocked.Increment(ref _allocs);
        else if (name.StartsWith("cuMemFree"u8)) Interlocked.Increment(ref _frees);
        else Interlocked.Increment(ref _other);
    }

    /// <summary>The counters now (for the tests of <see cref="Classify"/>).</summary>
    public static Counts Snapshot() => new(_launches, _graphLaunches, _copies, _memsets, _syncs, _allocs, _frees, _other);

    public static void Reset() => _launches = _graphLaunches = _copies = _memsets = _syncs = _allocs = _frees = _other = 0;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _unsubscribe(_subscriber);
        // the library stays loaded: CUPTI may still be unwinding its callback state
        GC.KeepAlive(_lib);
    }
}
