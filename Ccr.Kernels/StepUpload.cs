using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels;

/// <summary>
/// Everything a training step uploads (the batch and the step's scalars) as ONE asynchronous copy
/// from pinned host memory into device staging, then stream-ordered device copies from the staging
/// into the fixed buffers the step's kernels read. Per step: <see cref="Host{T}"/> gives each
/// destination's place in the current pinned slot (the host fills it), <see cref="Commit"/> issues
/// the copies and flips to the other slot. The host never waits for the device, except when it
/// comes back to a slot whose copy (issued two steps earlier) has not yet run: the device is then
/// two steps behind, and waiting is the right back-pressure.
/// </summary>
/// <remarks>
/// Layout: destination i at byte offset Offsets[i] of a slot (each 256-byte aligned); a slot is
/// Σ bytes, pinned host memory is 2 slots (ILGPU page-locked arrays: a pinned .NET array that the
/// CUDA driver registers), device staging is 2 slots (one allocation outside the pool, so a graph's
/// pool bookkeeping never sees it).
/// Why the staging is copied into fixed buffers rather than read by the kernels: a captured CUDA
/// graph reads fixed device addresses. The device-to-device copies run on the same stream as the
/// step, before its graph launch (outside the graph), so the graph keeps one set of addresses and
/// one capture per key; alternating staging slots would need one graph per slot (twice the
/// captures and memory) for nothing: the device copies move ~15 MB at device bandwidth (a few
/// microseconds on an H100), against the host-to-device copy at PCIe speed that is now issued
/// without a wait. Stream order makes the reuse safe: step k's copies into the fixed buffers
/// follow step k-1's kernels, and step k's copy into staging slot s follows step k-2's device
/// copies out of that slot. What this does not yet do is overlap the host-to-device copy with the
/// previous step's kernels (a second stream and a cross-stream event wait): the copy is issued at
/// once but runs after the previous step on the one stream.
/// On the CPU accelerator the same path runs with its synchronous copies (plain memory copies),
/// so results are bit for bit those of individual uploads.
/// </remarks>
internal sealed class StepUpload : IDisposable
{
    const int Slots = 2;
    const long Align = 256;

    readonly Device _d;
    readonly ArrayView<byte>[] _targets;
    readonly long[] _offsets;
    readonly PageLockedArray1D<byte>[] _host = new PageLockedArray1D<byte>[Slots];
    readonly MemoryBuffer1D<byte, Stride1D.Dense> _staging;
    readonly CudaEvent?[] _copied = new CudaEvent?[Slots]; // CUDA: the copy out of the slot's pinned memory
    int _slot;
    bool _waited;

    /// <summary>Bytes one step uploads (a slot, alignment included).</summary>
    public long SlotBytes { get; }
    /// <summary>Steps committed so far.</summary>
    public long Commits { get; private set; }

    /// <summary>An upload into <paramref name="targets"/> (fixed device buffers of
    /// <paramref name="d"/>, as raw bytes: <see cref="Bytes{T}"/>).</summary>
    public StepUpload(Device d, IReadOnlyList<ArrayView<byte>> targets)
    {
        if (targets.Count == 0) throw new ArgumentException("step upload: no destination");
        _d = d;
        _targets = [.. targets];
        _offsets = new long[targets.Count];
        long at = 0;
        for (int i = 0; i < targets.Count; i++)
        {
            if (targets[i].Length <= 0) throw new ArgumentException($"step upload: destination {i} is empty");
            _offsets[i] = at;
            at += (targets[i].Length + Align - 1) / Align * Align;
        }
        SlotBytes = at;
        if (SlotBytes > int.MaxValue) throw new ArgumentException($"step upload: {SlotBytes} bytes per step; a pinned slot holds at most 2 GiB");
        for (int s = 0; s < Slots; s++) _host[s] = d.Accelerator.AllocatePageLocked1D<byte>(SlotBytes, uninitialized: false);
        _staging = d.Accelerator.Allocate1D<byte>(Slots * SlotBytes);
        if (d.Accelerator is CudaAccelerator cuda)
            for (int s = 0; s < Slots; s++) _copied[s] = new CudaEvent(cuda);
    }

    /// <summary>A device buffer as the raw bytes <see cref="StepUpload"/> takes.</summary>
    public static ArrayView<byte> Bytes<T>(Buf<T> b) where T : unmanaged => b.View.Cast<byte>();

    /// <summary>Destination <paramref name="target"/>'s place in the current pinned slot, as T
    /// (valid until <see cref="Commit"/>). The first call of a step waits, when it must, for the
    /// copy that last read this slot.</summary>
    public Span<T> Host<T>(int target) where T : unmanaged
    {
        if ((uint)target >= (uint)_targets.Length) throw new ArgumentOutOfRangeException(nameof(target), $"step upload: destination {target} of {_targets.Length}");
        if (!_waited)
        {
            _copied[_slot]?.Wait();
            _waited = true;
        }
        var bytes = _host[_slot].Span.Slice((int)_offsets[target], (int)_targets[target].Length);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(bytes);
    }

    /// <summary>Issues this step's copies: the current pinned slot into its staging slot (one
    /// host-to-device copy), then each destination's bytes from the staging into its fixed buffer
    /// (device copies), all on the device's stream (<see cref="Device.Stream"/>: the step's stream, the
    /// one graphs are captured from and replayed on). Counts as one host copy (<see cref="HostCopies"/>), so a
    /// step that forbids host copies cannot commit.</summary>
    public void Commit()
    {
        HostCopies.Count();
        if (!_waited) _copied[_slot]?.Wait(); // a step that wrote nothing still must not race the slot
        var stream = _d.Stream;
        if (_d.IsHostMemory) _d.Accelerator.Synchronize(); // as Buf.CopyFrom: CPU kernels of the last step first
        ArrayView<byte> staging = _staging.View.SubView(_slot * SlotBytes, SlotBytes);
        staging.CopyFrom(stream, _host[_slot].ArrayView);
        if (_copied[_slot] is { } ev) ev.Record((CudaStream)stream);
        for (int i = 0; i < _targets.Length; i++)
        {
            var target = _targets[i];
            ArrayView<byte> source = staging.SubView(_offsets[i], target.Length);
            target.CopyFrom(stream, source);
        }
        _slot = (_slot + 1) % Slots;
        _waited = false;
        Commits++;
    }

    public void Dispose()
    {
        if (_d.IsCuda) _d.Synchronize(); // copies in flight read the pinned slots
        foreach (var e in _copied) e?.Dispose();
        foreach (var h in _host) h?.Dispose();
        _staging.Dispose();
    }
}
