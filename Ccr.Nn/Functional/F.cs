using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Functional;

/// <summary>
/// Differentiable ops on tensors (PyTorch's torch.nn.functional), split by family into
/// F.*.cs files. Each op checks shapes on the host, launches the kernel layer, and records a
/// backward closure with <see cref="Autograd.Record"/>. Activation gradients are written (=) into
/// fresh tensors; <see cref="Autograd.Accumulate"/> is the one place that adds.
/// </summary>
public static partial class F
{
    internal static void SameShape(string op, Tensor a, Tensor b)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shapes {Tensor.ShapeString(a.Shape)} and {Tensor.ShapeString(b.Shape)} differ");
        if (a.Device != b.Device) throw new ArgumentException($"{op}: tensors on different devices");
    }

    internal static void Rank(string op, Tensor t, int rank, string layout)
    {
        if (t.Rank != rank)
            throw new ArgumentException($"{op}: expected a rank-{rank} tensor {layout}, got {Tensor.ShapeString(t.Shape)}");
    }

    internal static void Float(string op, Tensor t)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{op}: {t.Describe()} must be float32");
    }

    public static Tensor Add(Tensor a, Tensor b)
    {
        SameShape("add", a, b);
        var y = Tensor.Empty(a.Device, a.Shape);
        Elementwise.Add(a.Device, y.Data, a.Data, b.Data);
        return Autograd.Record(y, "add", [a, b], g =>
        {
            Autograd.Accumulate(a, Copy(g));
            Autograd.Accumulate(b, Copy(g));
        });
    }

    public static Tensor Sub(Tensor a, Tensor b)
    {
        SameShape("sub", a, b);
        var y = Tensor.Empty(a.Device, a.Shape);
        Elementwise.Sub(a.Device, y.Data, a.Data, b.Data);
        return Autograd.Record(y, "sub", [a, b], g =>
        {
            Autograd.Accumulate(a, Copy(g));
            Autograd.Accumulate(b, Scaled(g, -1f));
        });
    }

    public static Tensor Mul(Tensor a, Tensor b)
    {
        SameShape("mul", a, b);
        var y = Tensor.Empty(a.Device, a.Shape);
        Elementwise.Mul(a.Device, y.Data, a.Data, b.Data);
        return Autograd.Record(y, "mul", [a, b], g =>
        {
            if (a.RequiresGrad) { var ga = Tensor.Empty(a.Device, a.Shape); Elementwise.Mul(a.Device, ga.Data, g.Data, b.Data); Autograd.Accumulate(a, ga); }
            if (b.RequiresGrad) { var gb = Tensor.Empty(b.Device, b.Shape); Elementwise.Mul(b.Device, gb.Data, g.Data, a.Data); Autograd.Accumulate(b, gb); }
        });
    }

    /// <summary>alpha * x.</summary>
    public static Tensor Scale(Tensor x, float alpha)
    {
        var y = Scaled(x, alpha);
        return Autograd.Record(y, "scale", [x], g => Autograd.Accumulate(x, Scaled(g, alpha)));
    }

    /// <summary>Sum of weighted scalars or same-shaped tensors: the multi-task loss sum_i w_i L_i.</summary>
    public static Tensor WeightedSum(IReadOnlyList<Tensor> xs, IReadOnlyList<float> weights)
    {
        if (xs.Count == 0 || xs.Count != weights.Count)
            throw new ArgumentException($"WeightedSum: {xs.Count} tensors and {weights.Count} weights");
        // Scalars of shape [] and [1] mix freely (losses are rank 0, a constant zero may be [1]).
        bool scalars = xs.All(x => x.Numel == 1);
        for (int i = 1; i < xs.Count && !scalars; i++) SameShape("WeightedSum", xs[0], xs[i]);
        var d = xs[0].Device;
        var y = Tensor.Empty(d, xs[0].Shape);
        Elementwise.Axpby(d, y.Data, xs[0].Data, weights[0], 0f);
        for (int i = 1; i < xs.Count; i++) Elementwise.Axpby(d, y.Data, xs[i].Data, weights[i], 1f);
        var inputs = xs.ToArray();
        var w = weights.ToArray();
        return Autograd.Record(y, "weighted_sum", inputs, g =>
        {
            for (int i = 0; i < inputs.Length; i++)
                if (inputs[i].RequiresGrad) Autograd.Accumulate(inputs[i], Scaled(g, w[i]));
        });
    }

    /// <summary>scale[0] * sum of xs, as <see cref="WeightedSum"/> with every weight equal to a
    /// factor held in device memory (one float: a per-step scalar such as CCR's lambda ramp, read by
    /// the kernels, so a captured step replays with each step's value). Same arithmetic, same bits.</summary>
    public static Tensor ScaledSum(IReadOnlyList<Tensor> xs, Buf<float> scale)
    {
        if (xs.Count == 0) throw new ArgumentException("ScaledSum: no tensors");
        bool scalars = xs.All(x => x.Numel == 1);
        for (int i = 1; i < xs.Count && !scalars; i++) SameShape("ScaledSum", xs[0], xs[i]);
        var d = xs[0].Device;
        var y = Tensor.Empty(d, xs[0].Shape);
        Elementwise.Axpby(d, y.Data, xs[0].Data, scale, 0f);
        for (int i = 1; i < xs.Count; i++) Elementwise.Axpby(d, y.Data, xs[i].Data, scale, 1f);
        var inputs = xs.ToArray();
        return Autograd.Record(y, "scaled_sum", inputs, g =>
        {
            foreach (var x in inputs)
                if (x.RequiresGrad)
                {
                    var c = Tensor.Empty(g.Device, g.Shape);
                    Elementwise.Axpby(g.Device, c.Data, g.Data, scale, 0f);
                    Autograd.Accumulate(x, c);
                }
        });
    }

    public static Tensor Relu(Tensor x)
    {
        Float("relu", x);
        var y = Tensor.Empty(x.Device, x.Shape);
        Elementwise.Relu(x.Device, y.Data, x.Data);
        return Autograd.Record(y, "relu", [x], g =>
        {
            var gx = Tensor.Empty(x.Device, x.Shape);
            Elementwise.ReluBackward(x.Device, gx.Data, g.Data, y.Data);
            Autograd.Accumulate(x, gx);
        });
    }

    /// <summary>relu(a + b) in one pass (HRNet's fuse sums): the same result as Relu(Add(a, b)).</summary>
    public static Tensor AddRelu(Tensor a, Tensor b)
    {
        SameShape("add_relu", a, b);
        Float("add_relu", a);
        var y = Tensor.Empty(a.Device, a.Shape);
        Elementwise.AddRelu(a.Device, y.Data, a.Data, b.Data);
        return Autograd.Record(y, "add_relu", [a, b], g =>
        {
            var gz = Tensor.Empty(a.Device, a.Shape);
            Elementwise.ReluBackward(a.Device, gz.Data, g.Data, y.Data);
            if (b.RequiresGrad) Autograd.Accumulate(b, a.RequiresGrad ? Copy(gz) : gz);
            if (a.RequiresGrad) Autograd.Accumulate(a, gz);
            else if (!b.RequiresGrad) gz.Dispose();
        });
    }

    /// <summary>Same elements, another shape: a view that shares the data.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        long known = 1;
        for (int i = 0; i < shape.Length; i++) if (i != infer) known *= shape[i];
        if (infer >= 0 && known > 0) shape[infer] = (int)(x.Numel / known);
        long n = 1;
        foreach (var s in shape) n *= s;
        if (n != x.Numel)
            throw new ArgumentException($"reshape: {x.Describe()} ({x.Numel} elements) cannot become {Tensor.ShapeString(shape)}");
        var y = Tensor.ViewOf(x.Device, x.Block, x.Offset, x.DType, shape);
        TensorScope.Register(y);
        return Autograd.Record(y, "reshape", [x], g =>
        {
            var gx = Tensor.Empty(x.Device, x.Shape);
            Elementwise.Axpby(x.Device, gx.Data, g.Data, 1f, 0f);
            Autograd.Accumulate(x, gx);
        });
    }

    /// <summary>A fresh copy of g (gradients passed to Accumulate are owned by it).</summary>
    internal static Tensor Copy(Tensor g) => Scaled(g, 1f);

    internal static Tensor Scaled(Tensor g, float alpha)
    {
        var c = Tensor.Empty(g.Device, g.Shape);
        Elementwise.Axpby(g.Device, c.Data, g.Data, alpha, 0f);
        return c;
    }
}
