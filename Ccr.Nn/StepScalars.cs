using Ccr.Kernels;

namespace Ccr.Nn;

/// <summary>
/// The scalars that change from one training step to the next (the learning rate and Adam's bias
/// corrections, the CCR lambda ramp, saliency's class weights) in one small device buffer, so that
/// the kernels read them from memory instead of taking them as launch arguments: a step captured as
/// a CUDA graph replays with new values, and the whole set costs one upload per step, made before
/// the step (<see cref="Upload"/>). Users reserve a slot once (<see cref="Reserve"/>), write it on
/// the host each step, and pass <see cref="ScalarSlot.Data"/> to the kernels.
/// </summary>
public sealed class StepScalars : IDisposable
{
    readonly Tensor _device; // (Capacity) float32
    readonly float[] _host;
    int _used;

    public Device Device { get; }
    public int Capacity => _host.Length;

    public StepScalars(Device d, int capacity = 16)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), $"StepScalars: capacity {capacity}");
        Device = d;
        _host = new float[capacity];
        _device = Tensor.Zeros(d, capacity);
        TensorScope.Forget(_device);
        _device.Name = "step scalars";
    }

    /// <summary><paramref name="count"/> consecutive scalars for <paramref name="owner"/> (named in errors).</summary>
    public ScalarSlot Reserve(string owner, int count)
    {
        if (count < 1 || _used + count > Capacity)
            throw new InvalidOperationException($"StepScalars: {owner} asks for {count} scalars, {Capacity - _used} of {Capacity} are left");
        var s = new ScalarSlot(this, _used, count);
        _used += count;
        return s;
    }

    internal Buf<float> Slice(int offset, int count) => _device.Data.Slice(offset, count);
    internal void Set(int offset, float v) => _host[offset] = v;
    internal float Get(int offset) => _host[offset];

    /// <summary>Copies every slot's host value to the device (one copy; not inside a captured step).</summary>
    public void Upload() => _device.Data.CopyFrom(_host);

    /// <summary>The device buffer of all slots (Capacity floats): a destination of the trainer's one
    /// upload per step (<see cref="StepUpload"/>), which <see cref="WriteHost"/> fills on the host.</summary>
    public Buf<float> DeviceData => _device.Data;

    /// <summary>Writes every slot's host value into <paramref name="dst"/> (Capacity floats; the
    /// pinned memory of a <see cref="StepUpload"/>), instead of <see cref="Upload"/>.</summary>
    public void WriteHost(Span<float> dst) => _host.CopyTo(dst);

    public void Dispose() => _device.Dispose();
}

/// <summary>Consecutive scalars of a <see cref="StepScalars"/>: written on the host by index, read
/// by kernels through <see cref="Data"/> after the owner's upload.</summary>
public sealed class ScalarSlot(StepScalars owner, int offset, int count)
{
    public StepScalars Owner { get; } = owner;
    public int Count { get; } = count;
    /// <summary>The slot on the device (valid for kernels once <see cref="StepScalars.Upload"/> ran).</summary>
    public Buf<float> Data => Owner.Slice(offset, Count);

    public float this[int i]
    {
        get => Owner.Get(offset + Check(i));
        set => Owner.Set(offset + Check(i), value);
    }

    int Check(int i) => (uint)i < (uint)Count ? i : throw new ArgumentOutOfRangeException(nameof(i), $"scalar {i} of a slot of {Count}");
}
