using System.Runtime.InteropServices;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels;

/// <summary>
/// A CUDA event through the driver API (ILGPU 1.5.3 exposes events only as profiling markers, which
/// need a profiling context): recorded on a stream after some work, waited for by the host only
/// when that work must be finished (<see cref="StepUpload"/>: before a pinned slot is rewritten).
/// Created without timing (CU_EVENT_DISABLE_TIMING), the cheapest kind. Untested without a GPU.
/// </summary>
internal sealed class CudaEvent : IDisposable
{
    const string Lib = "libcuda.so.1";
    const uint DisableTiming = 0x2;

    [DllImport(Lib)] static extern int cuEventCreate(out IntPtr ev, uint flags);
    [DllImport(Lib)] static extern int cuEventRecord(IntPtr ev, IntPtr stream);
    [DllImport(Lib)] static extern int cuEventSynchronize(IntPtr ev);
    [DllImport(Lib)] static extern int cuEventDestroy_v2(IntPtr ev);

    readonly CudaAccelerator _acc;
    IntPtr _ev;

    public CudaEvent(CudaAccelerator acc)
    {
        _acc = acc;
        acc.Bind();
        Check(cuEventCreate(out _ev, DisableTiming), "cuEventCreate");
    }

    /// <summary>Marks the point reached by the work issued so far on <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream)
    {
        _acc.Bind();
        Check(cuEventRecord(_ev, stream.StreamPtr), "cuEventRecord");
    }

    /// <summary>Blocks the host until the recorded work is done (at once when it already is, or
    /// when nothing was recorded).</summary>
    public void Wait()
    {
        _acc.Bind();
        Check(cuEventSynchronize(_ev), "cuEventSynchronize");
    }

    public void Dispose()
    {
        if (_ev == IntPtr.Zero) return;
        cuEventDestroy_v2(_ev);
        _ev = IntPtr.Zero;
    }

    static void Check(int rc, string call)
    {
        if (rc != 0) throw new CudaGraphException($"{call} failed: CUDA error {rc}");
    }
}
