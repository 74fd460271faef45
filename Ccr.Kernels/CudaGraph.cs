using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels;

/// <summary>
/// CUDA graphs through the driver API (libcuda.so.1), which ILGPU does not wrap: stream capture
/// (<c>cuStreamBeginCapture_v2</c> / <c>cuStreamEndCapture</c>), instantiation and launch
/// (<c>cuGraphInstantiateWithFlags</c> / <c>cuGraphLaunch</c>), and destruction. docs/DESIGN.md: on an
/// H200, ILGPU launches issued between begin and end on the same stream were captured and a
/// replay ran 1,000 kernels at 0.8 us each, with correct results.
/// </summary>
/// <remarks>
/// The legacy default stream (ILGPU's <see cref="Accelerator.DefaultStream"/> on CUDA is the null
/// stream) cannot be captured, so <see cref="UseCaptureStream"/> makes a created stream the
/// device's <see cref="Device.Stream"/>: every launch (<see cref="Launch.Load{T1}"/>'s launchers
/// pass the device's stream) and every copy and memset of ours go to it, in one order. It is a
/// blocking stream, so anything ILGPU still issues on the null stream stays ordered with it. Untested without a GPU (none in CI): the CPU
/// accelerator has no graphs, and <see cref="StepGraphs"/> falls back to plain launches there.
/// </remarks>
internal static class CudaGraph
{
    const string Lib = "libcuda.so.1";
    const int CaptureModeThreadLocal = 1; // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: unsafe calls of this thread fail the capture

    [DllImport(Lib)] static extern int cuStreamBeginCapture_v2(IntPtr stream, int mode);
    [DllImport(Lib)] static extern int cuStreamEndCapture(IntPtr stream, out IntPtr graph);
    [DllImport(Lib)] static extern int cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);
    [DllImport(Lib)] static extern int cuGraphLaunch(IntPtr exec, IntPtr stream);
    [DllImport(Lib)] static extern int cuGraphExecDestroy(IntPtr exec);
    [DllImport(Lib)] static extern int cuGraphDestroy(IntPtr graph);
    [DllImport(Lib)] static extern int cuGraphGetNodes(IntPtr graph, IntPtr nodes, ref nuint count);
    [DllImport(Lib)] static extern int cuGetErrorName(int error, out IntPtr name);

    /// <summary>Makes a created (capturable) stream <paramref name="d"/>'s <see cref="Device.Stream"/>,
    /// once; returns its handle. Throws <see cref="NotSupportedException"/> when the device is not CUDA.</summary>
    public static IntPtr UseCaptureStream(Device d)
    {
        if (d.Accelerator is not CudaAccelerator cuda) throw new NotSupportedException("CUDA graphs need a CUDA device");
        if (d.Stream is CudaStream { StreamPtr: var p } && p != IntPtr.Zero) return p; // done before
        // blocking (not CU_STREAM_NON_BLOCKING): whatever ILGPU still issues on the legacy null stream
        // (its own allocations' initialisation) stays ordered with the device's work
        var stream = cuda.CreateStream(StreamFlags.CU_STREAM_DEFAULT);
        d.SwitchStream(stream); // the device owns it from here
        return stream.StreamPtr;
    }

    /// <summary>Starts capturing <paramref name="stream"/>: launches on it are recorded, not run.</summary>
    public static void BeginCapture(Device d, IntPtr stream)
    {
        d.Accelerator.Bind();
        Check(cuStreamBeginCapture_v2(stream, CaptureModeThreadLocal), "cuStreamBeginCapture_v2");
    }

    /// <summary>Ends the capture of <paramref name="stream"/> and instantiates what was captured.
    /// The graph itself is destroyed here (the executable graph keeps what it needs).</summary>
    public static Exec EndCapture(IntPtr stream)
    {
        int rc = cuStreamEndCapture(stream, out var graph);
        if (rc != 0)
        {
            if (graph != IntPtr.Zero) cuGraphDestroy(graph);
            Check(rc, "cuStreamEndCapture");
        }
        try
        {
            nuint nodes = 0;
            Check(cuGraphGetNodes(graph, IntPtr.Zero, ref nodes), "cuGraphGetNodes");
            Check(cuGraphInstantiateWithFlags(out var exec, graph, 0), "cuGraphInstantiateWithFlags");
            return new Exec(exec, stream, (long)nodes);
        }
        finally { cuGraphDestroy(graph); }
    }

    /// <summary>Ends a capture that failed, discarding whatever was recorded (errors ignored: the
    /// capture may already be invalidated).</summary>
    public static void AbortCapture(IntPtr stream)
    {
        if (cuStreamEndCapture(stream, out var graph) == 0 && graph != IntPtr.Zero) cuGraphDestroy(graph);
    }

    /// <summary>An instantiated graph, launched on the stream it was captured from.</summary>
    public sealed class Exec(IntPtr exec, IntPtr stream, long nodes) : IDisposable
    {
        IntPtr _exec = exec;
        /// <summary>Nodes of the captured graph (one per captured kernel launch).</summary>
        public long Nodes { get; } = nodes;

        public void Launch()
        {
            ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
            Check(cuGraphLaunch(_exec, stream), "cuGraphLaunch");
        }

        public void Dispose()
        {
            if (_exec == IntPtr.Zero) return;
            cuGraphExecDestroy(_exec);
            _exec = IntPtr.Zero;
        }
    }

    static void Check(int rc, string call)
    {
        if (rc == 0) return;
        string name = cuGetErrorName(rc, out var p) == 0 && p != IntPtr.Zero ? Marshal.PtrToStringAnsi(p) ?? "?" : "?";
        throw new CudaGraphException($"{call} failed: {name} ({rc})");
    }
}

/// <summary>A CUDA driver call of graph capture or replay failed (the message names the call and the error).</summary>
internal sealed class CudaGraphException(string message) : Exception(message);
