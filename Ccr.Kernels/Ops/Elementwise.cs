using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Elementwise float ops. Every function writes its output (=); accumulation is explicit (Axpy).
/// CUDA variant: grid-stride ILGPU kernels written for bandwidth: one wave of resident groups
/// (<see cref="Launch.Grid"/>), and four independent elements per thread per iteration, all loaded
/// at the top of the iteration, before any arithmetic, branch or store: a GPU thread issues in
/// order and stalls at the first use of a pending load, so this keeps ~4x more bytes in flight than
/// one element per iteration. Outputs may alias inputs (each element is read, then written, by
/// one thread). CPU variant: SIMD host code (TensorPrimitives / Vector) on the CPU accelerator's host
/// memory. The float64 references are in Elementwise.Reference.cs.
/// </summary>
internal static partial class Elementwise
{
    // ---------------------------------------------------------------- kernels (grid-stride, 4 per iteration)

    static void FillKernel(ArrayView<float> y, float v)
    {
        int n = y.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        for (; i + 3 * st < n; i += 4 * st) { y[i] = v; y[i + st] = v; y[i + 2 * st] = v; y[i + 3 * st] = v; }
        for (; i < n; i += st) y[i] = v;
    }

    // y = a (op) b with op 0: +, 1: -, 2: *, 3: relu(a + b)
    static float Op(float a, float b, int op) =>
        op == 0 ? a + b : op == 1 ? a - b : op == 2 ? a * b : (a + b <= 0f ? 0f : a + b);

    static void BinaryKernel(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int op)
    {
        int n = y.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        for (; i + 3 * st < n; i += 4 * st)
        {
            float a0 = a[i], a1 = a[i + st], a2 = a[i + 2 * st], a3 = a[i + 3 * st];
            float b0 = b[i], b1 = b[i + st], b2 = b[i + 2 * st], b3 = b[i + 3 * st];
            y[i] = Op(a0, b0, op); y[i + st] = Op(a1, b1, op); y[i + 2 * st] = Op(a2, b2, op); y[i + 3 * st] = Op(a3, b3, op);
        }
        for (; i < n; i += st) y[i] = Op(a[i], b[i], op);
    }

    // y = alpha * x + beta * y  (beta = 0: y's old contents are not read, NaN included)
    static void AxpbyKernel(ArrayView<float> y, ArrayView<float> x, float alpha, float beta)
    {
        int n = y.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        if (beta == 0f)
        {
            for (; i + 3 * st < n; i += 4 * st)
            {
                float x0 = x[i], x1 = x[i + st], x2 = x[i + 2 * st], x3 = x[i + 3 * st];
                y[i] = alpha * x0; y[i + st] = alpha * x1; y[i + 2 * st] = alpha * x2; y[i + 3 * st] = alpha * x3;
            }
            for (; i < n; i += st) y[i] = alpha * x[i];
            return;
        }
        for (; i + 3 * st < n; i += 4 * st)
        {
            float x0 = x[i], x1 = x[i + st], x2 = x[i + 2 * st], x3 = x[i + 3 * st];
            float y0 = y[i], y1 = y[i + st], y2 = y[i + 2 * st], y3 = y[i + 3 * st];
            y[i] = alpha * x0 + beta * y0; y[i + st] = alpha * x1 + beta * y1;
            y[i + 2 * st] = alpha * x2 + beta * y2; y[i + 3 * st] = alpha * x3 + beta * y3;
        }
        for (; i < n; i += st) y[i] = alpha * x[i] + beta * y[i];
    }

    // y = alpha[0] * x + beta * y: Axpby with the factor in device memory (a per-step scalar, such as
    // CCR's lambda ramp, that a captured step must read anew each replay); the same arithmetic
    static void AxpbyAtKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> alphaAt, float beta)
    {
        float alpha = alphaAt[0];
        int n = y.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        if (beta == 0f)
        {
            for (; i < n; i += st) y[i] = alpha * x[i];
            return;
        }
        for (; i < n; i += st) y[i] = alpha * x[i] + beta * y[i];
    }

    static float Relu1(float v) => v <= 0f ? 0f : v; // NaN passes, as torch.relu

    static void ReluKernel(ArrayView<float> y, ArrayView<float> x)
    {
        int n = y.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        for (; i + 3 * st < n; i += 4 * st)
        {
            float x0 = x[i], x1 = x[i + st], x2 = x[i + 2 * st], x3 = x[i + 3 * st];
            y[i] = Relu1(x0); y[i + st] = Relu1(x1); y[i + 2 * st] = Relu1(x2); y[i + 3 * st] = Relu1(x3);
        }
        for (; i < n; i += st) y[i] = Relu1(x[i]);
    }

    // dx = dy where the forward output was positive (y > 0 <=> x > 0), else 0
    static float Mask(float g, float y) => y <= 0f ? 0f : g; // torch's threshold_backward: NaN passes

    static void ReluBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> y)
    {
        int n = dx.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        for (; i + 3 * st < n; i += 4 * st)
        {
            float g0 = dy[i], g1 = dy[i + st], g2 = dy[i + 2 * st], g3 = dy[i + 3 * st];
            float y0 = y[i], y1 = y[i + st], y2 = y[i + 2 * st], y3 = y[i + 3 * st];
            dx[i] = Mask(g0, y0); dx[i + st] = Mask(g1, y1); dx[i + 2 * st] = Mask(g2, y2); dx[i + 3 * st] = Mask(g3, y3);
        }
        for (; i < n; i += st) dx[i] = Mask(dy[i], y[i]);
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, float> Fill;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> Binary;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> ReluBackward;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, float> Axpby;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>> Relu;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> AxpbyAt;

        public Kernels(Device d)
        {
            Fill = d.Load<ArrayView<float>, float>(FillKernel);
            Binary = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(BinaryKernel);
            ReluBackward = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>>(ReluBackwardKernel);
            Axpby = d.Load<ArrayView<float>, ArrayView<float>, float, float>(AxpbyKernel);
            Relu = d.Load<ArrayView<float>, ArrayView<float>>(ReluKernel);
            AxpbyAt = d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(AxpbyAtKernel);
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
    /// <summary>y = max(a + b, 0) in one pass (a residual add followed by ReLU). NaN passes, as in torch.relu.</summary>
    public static void AddRelu(Device d, Buf<float> y, Buf<float> a, Buf<float> b) => Binary(d, "AddRelu", y, a, b, 3);

    static void Binary(Device d, string op, Buf<float> y, Buf<float> a, Buf<float> b, int which)
    {
        Launch.SameLength(op, a.Length, b.Length);
        Launch.SameLength(op, y.Length, a.Length, "output and input");
        if (y.Length == 0) return;
        if (Host(d))
        {
            if (which == 0) TensorPrimitives.Add(a.Span, b.Span, y.Span);
            else if (which == 1) TensorPrimitives.Subtract(a.Span, b.Span, y.Span);
            else if (which == 2) TensorPrimitives.Multiply(a.Span, b.Span, y.Span);
            else HostAddRelu(y.Span, a.Span, b.Span);
            return;
        }
        K(d).Binary(d.Grid(y.Length), y.View, a.View, b.View, which);
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

    /// <summary>y = alpha[0] * x + beta * y with the factor read from device memory (one float):
    /// the same results as <see cref="Axpby(Device, Buf{float}, Buf{float}, float, float)"/> with that value.</summary>
    public static unsafe void Axpby(Device d, Buf<float> y, Buf<float> x, Buf<float> alpha, float beta)
    {
        Launch.SameLength("Axpby", y.Length, x.Length);
        Launch.SameLength("Axpby", alpha.Length, 1, "factor and a scalar");
        if (y.Length == 0) return;
        if (Host(d))
        {
            d.Synchronize();
            Axpby(d, y, x, *alpha.Ptr, beta);
            return;
        }
        K(d).AxpbyAt(d.Grid(y.Length), y.View, x.View, alpha.View, beta);
    }

    /// <summary>y = max(x, 0). NaN maps to 0, as the comparison is false.</summary>
    public static void Relu(Device d, Buf<float> y, Buf<float> x)
    {
        Launch.SameLength("Relu", y.Length, x.Length);
        if (y.Length == 0) return;
        if (Host(d))
        {
            HostAddRelu(y.Span, x.Span, default);
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
            HostMask(dx.Span, dy.Span, y.Span);
            return;
        }
        K(d).ReluBackward(d.Grid(dx.Length), dx.View, dy.View, y.View);
    }

    // ---------------------------------------------------------------- host SIMD helpers

    /// <summary>y = max(a + b, 0) (b empty: max(a, 0)); NaN passes as in torch.relu (v &lt;= 0 ? 0 : v).</summary>
    static void HostAddRelu(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        bool add = !b.IsEmpty;
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        var av = MemoryMarshal.Cast<float, Vector<float>>(a);
        var bv = MemoryMarshal.Cast<float, Vector<float>>(b);
        for (int i = 0; i < av.Length; i++)
        {
            var v = add ? av[i] + bv[i] : av[i];
            yv[i] = Vector.ConditionalSelect(Vector.LessThanOrEqual(v, Vector<float>.Zero), Vector<float>.Zero, v);
        }
        for (int i = av.Length * Vector<float>.Count; i < a.Length; i++)
        {
            float v = add ? a[i] + b[i] : a[i];
            y[i] = v <= 0f ? 0f : v;
        }
    }

    /// <summary>dx = y &lt;= 0 ? 0 : dy (NaN passes, as torch's threshold_backward).</summary>
    static void HostMask(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y)
    {
        var ov = MemoryMarshal.Cast<float, Vector<float>>(dx);
        var gv = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
        for (int i = 0; i < ov.Length; i++)
            ov[i] = Vector.ConditionalSelect(Vector.LessThanOrEqual(yv[i], Vector<float>.Zero), Vector<float>.Zero, gv[i]);
        for (int i = ov.Length * Vector<float>.Count; i < dx.Length; i++) dx[i] = y[i] <= 0f ? 0f : dy[i];
    }
}
