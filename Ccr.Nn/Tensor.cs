using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn;

public enum DType { F32, I32 }

/// <summary>
/// A contiguous NCHW (or any-rank) tensor of float32 or int32 on one device. It either owns a pooled
/// block (disposed with the tensor) or is a view into someone else's block (a parameter inside the
/// parameter arena). Autograd state: <see cref="RequiresGrad"/>, <see cref="Grad"/> and the node
/// that created it.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    public Device Device { get; }
    public int[] Shape { get; }
    public long Numel { get; }
    public DType DType { get; }
    /// <summary>Name of the op (or parameter) that produced this tensor, for error messages.</summary>
    public string? Name { get; set; }

    PooledBlock _block;
    long _offset;
    bool _ownsBlock;
    bool _disposed;

    public bool RequiresGrad { get; set; }
    public Tensor? Grad { get; internal set; }
    internal Node? Creator { get; set; }
    public bool IsLeaf => Creator == null;
    public bool IsDisposed => _disposed;

    Tensor(Device device, int[] shape, DType dtype, PooledBlock block, long offset, bool owns)
    {
        Device = device; Shape = shape; DType = dtype; Numel = ShapeNumel(shape);
        _block = block; _offset = offset; _ownsBlock = owns;
        TensorStats.Of(device).Created(owns ? block.Bytes : 0);
        if (owns) TensorScope.Register(this);
    }

    /// <summary>An uninitialised tensor (contents are whatever the pool block held).</summary>
    public static Tensor Empty(Device d, DType dtype, params int[] shape)
    {
        var s = CheckShape(shape);
        long n = ShapeNumel(s);
        return new Tensor(d, s, dtype, d.Pool.Rent(Math.Max(1, n) * 4), 0, owns: true);
    }
    public static Tensor Empty(Device d, params int[] shape) => Empty(d, DType.F32, shape);

    public static Tensor Zeros(Device d, params int[] shape) => Full(d, 0f, shape);

    public static Tensor Full(Device d, float value, params int[] shape)
    {
        var t = Empty(d, shape);
        Elementwise.Fill(d, t.Data, value);
        return t;
    }

    public static Tensor FromArray(Device d, float[] data, params int[] shape)
    {
        var t = Empty(d, shape);
        if (data.Length != t.Numel)
            throw new ArgumentException($"FromArray: {data.Length} values for shape {ShapeString(shape)} ({t.Numel} elements)");
        t.Data.CopyFrom(data);
        return t;
    }

    public static Tensor FromArray(Device d, int[] data, params int[] shape)
    {
        var t = Empty(d, DType.I32, shape);
        if (data.Length != t.Numel)
            throw new ArgumentException($"FromArray: {data.Length} values for shape {ShapeString(shape)} ({t.Numel} elements)");
        t.IntData.CopyFrom(data);
        return t;
    }

    /// <summary>A non-owning view of <paramref name="block"/> at <paramref name="offset"/> elements.</summary>
    public static Tensor ViewOf(Device d, PooledBlock block, long offset, DType dtype, params int[] shape) =>
        new(d, CheckShape(shape), dtype, block, offset, owns: false);


    public Buf<float> Data
    {
        get
        {
            ThrowIfDisposed();
            if (DType != DType.F32) throw new InvalidOperationException($"tensor {Describe()} is int32, a float32 op was asked of it");
            return new Buf<float>(_block, _offset, Numel);
        }
    }

    public Buf<int> IntData
    {
        get
        {
            ThrowIfDisposed();
            if (DType != DType.I32) throw new InvalidOperationException($"tensor {Describe()} is float32, an int32 op was asked of it");
            return new Buf<int>(_block, _offset, Numel);
        }
    }

    internal PooledBlock Block { get { ThrowIfDisposed(); return _block; } }
    internal long Offset => _offset;

    /// <summary>Points this tensor at another block (the parameter arena), copying nothing.</summary>
    internal void Rebind(PooledBlock block, long offset)
    {
        ThrowIfDisposed();
        if (_ownsBlock) { TensorStats.Of(Device).Released(_block.Bytes, keepCount: true); _block.Dispose(); }
        _block = block; _offset = offset; _ownsBlock = false;
    }

    public float[] ToArray() => Data.ToArray();
    public int[] ToIntArray() => IntData.ToArray();

    /// <summary>The single value of a one-element tensor; NaN or infinity is an error naming the op.</summary>
    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() of tensor {Describe()} with {Numel} elements");
        float v = Data.ToArray()[0];
        if (!float.IsFinite(v))
            throw new NonFiniteException($"{(float.IsNaN(v) ? "NaN" : "infinity")} produced by op '{Name ?? "?"}'", Name);
        return v;
    }

    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];
    public int Rank => Shape.Length;

    /// <summary>Same data, another shape with the same number of elements (a non-owning view that
    /// keeps this tensor's gradient path).</summary>
    public Tensor Reshape(params int[] shape) => Functional.F.Reshape(this, shape);

    public string Describe() => $"{Name ?? "tensor"}{ShapeString(Shape)}";
    public override string ToString() => $"Tensor{ShapeString(Shape)} {DType}{(RequiresGrad ? " requires_grad" : "")}";

    public static string ShapeString(int[] s) => "[" + string.Join(", ", s) + "]";

    static long ShapeNumel(int[] s)
    {
        long n = 1;
        foreach (var v in s) n *= v;
        return n;
    }

    static int[] CheckShape(int[] shape)
    {
        foreach (var v in shape)
            if (v < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}");
        return (int[])shape.Clone();
    }

    internal void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(Describe(), $"tensor {Describe()} used after it was disposed");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        TensorStats.Of(Device).Released(_ownsBlock ? _block.Bytes : 0);
        if (_ownsBlock) _block.Dispose();
        Creator = null;
        if (Grad != null && !Grad._disposed && Grad._ownsBlock) Grad.Dispose();
    }
}

/// <summary>A loss or activation became NaN or infinite; <see cref="Op"/> names the op that made it.</summary>
public sealed class NonFiniteException(string message, string? op) : Exception(message)
{
    public string? Op { get; } = op;
}
