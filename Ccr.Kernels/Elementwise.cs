using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Elementwise float ops. Every function writes its output (=); accumulation is explicit (Axpy).
/// CUDA variant: grid-stride ILGPU kernels. CPU variant: SIMD host code (TensorPrimitives) on the
/// CPU accelerator's host memory. The float64 references are in Elementwise.Reference.cs.
/// </summary>
public static partial class Elementwise
{
    // ---------------------------------------------------------------- kernels (grid-stride)

    static void FillKernel(ArrayView<float> y, float v)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = v;
    }

    static void AddKernel(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = a[i] + b[i];
    }

    static void SubKernel(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = a[i] - b[i];
    }

    static void MulKernel(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = a[i] * b[i];
    }

    // y = alpha * x + beta * y  (beta = 1: accumulate; beta = 0: scale into y)
    static void AxpbyKernel(ArrayView<float> y, ArrayView<float> x, float alpha, float beta)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride)
            y[i] = beta == 0f ? alpha * x[i] : alpha * x[i] + beta * y[i];
    }

    static void ReluKernel(ArrayView<float> y, ArrayView<float> x)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = x[i] > 0f ? x[i] : 0f;
    }

    // dx = dy where the forward output was positive (y > 0 <=> x > 0), else 0
    static void ReluBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < dx.IntLength; i += Launch.Stride) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, float> Fill;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add, Sub, Mul, ReluBackward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, float> Axpby;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>> Relu;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            Fill = a.LoadStreamKernel<ArrayView<float>, float>(FillKernel);
            Add = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel);
            Sub = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(SubKernel);
            Mul = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(MulKernel);
            ReluBackward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(ReluBackwardKernel);
            Axpby = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float, float>(AxpbyKernel);
            Relu = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>>(ReluKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    public static void Fill(Device d, Buf<float> y, float value)
    {
        if (y.Length == 0) return;
        if (Host(d)) { y.Span.Fill(value); return; }
        K(d).Fill(d.Grid(y.Length), y.View, value);
    }

    /// <summary>y = a + b (y may alias a or b).</summary>
    public static void Add(Device d, Buf<float> y, Buf<float> a, Buf<float> b) => Binary(d, "Add", y, a, b, 0);
    /// <summary>y = a - b.</summary>
    public static void Sub(Device d, Buf<float> y, Buf<float> a, Buf<float> b) => Binary(d, "Sub", y, a, b, 1);
    /// <summary>y = a * b.</summary>
    public static void Mul(Device d, Buf<float> y, Buf<float> a, Buf<float> b) => Binary(d, "Mul", y, a, b, 2);

    static void Binary(Device d, string op, Buf<float> y, Buf<float> a, Buf<float> b, int which)
    {
        Launch.SameLength(op, a.Length, b.Length);
        Launch.SameLength(op, y.Length, a.Length, "output and input");
        if (y.Length == 0) return;
        if (Host(d))
        {
            if (which == 0) TensorPrimitives.Add(a.Span, b.Span, y.Span);
            else if (which == 1) TensorPrimitives.Subtract(a.Span, b.Span, y.Span);
            else TensorPrimitives.Multiply(a.Span, b.Span, y.Span);
            return;
        }
        var k = K(d);
        (which == 0 ? k.Add : which == 1 ? k.Sub : k.Mul)(d.Grid(y.Length), y.View, a.View, b.View);
    }

    /// <summary>y = alpha * x + beta * y. With beta = 0, y's old contents are ignored (NaN too).</summary>
    public static void Axpby(Device d, Buf<float> y, Buf<float> x, float alpha, float beta)
    {
        Launch.SameLength("Axpby", y.Length, x.Length);
        if (y.Length == 0) return;
        if (Host(d))
        {
            var ys = y.Span;
            if (beta == 0f) TensorPrimitives.Multiply(x.Span, alpha, ys);
            else if (beta == 1f) TensorPrimitives.MultiplyAdd(x.Span, alpha, ys, ys);
            else { TensorPrimitives.Multiply(ys, beta, ys); TensorPrimitives.MultiplyAdd(x.Span, alpha, ys, ys); }
            return;
        }
        K(d).Axpby(d.Grid(y.Length), y.View, x.View, alpha, beta);
    }

    /// <summary>y = max(x, 0). NaN maps to 0, as the comparison is false.</summary>
    public static void Relu(Device d, Buf<float> y, Buf<float> x)
    {
        Launch.SameLength("Relu", y.Length, x.Length);
        if (y.Length == 0) return;
        if (Host(d))
        {
            var xs = x.Span; var ys = y.Span;
            for (int i = 0; i < ys.Length; i++) ys[i] = xs[i] > 0f ? xs[i] : 0f;
            return;
        }
        K(d).Relu(d.Grid(y.Length), y.View, x.View);
    }

    /// <summary>dx = dy * (y > 0), where y is the forward output.</summary>
    public static void ReluBackward(Device d, Buf<float> dx, Buf<float> dy, Buf<float> y)
    {
        Launch.SameLength("ReluBackward", dx.Length, dy.Length);
        Launch.SameLength("ReluBackward", dx.Length, y.Length);
        if (dx.Length == 0) return;
        if (Host(d))
        {
            var dxs = dx.Span; var dys = dy.Span; var ys = y.Span;
            for (int i = 0; i < dxs.Length; i++) dxs[i] = ys[i] > 0f ? dys[i] : 0f;
            return;
        }
        K(d).ReluBackward(d.Grid(dx.Length), dx.View, dy.View, y.View);
    }
}
