using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

public sealed class ElementwiseVerify : IVerifySuite
{
    public string Family => "elementwise";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        foreach (int n in small ? new[] { 1, 1000 } : new[] { 1, 4097, 3 * 1024 * 1024 + 5 })
        {
            yield return new VerifyCase("add", $"[{n}]", 1e-6, 1e-6, d => Binary(d, n, 0));
            yield return new VerifyCase("mul", $"[{n}]", 1e-6, 1e-6, d => Binary(d, n, 2));
            yield return new VerifyCase("axpby", $"[{n}]", 1e-6, 1e-5, d => Axpby(d, n));
            yield return new VerifyCase("relu+backward", $"[{n}]", 0, 0, d => Relu(d, n));
            yield return new VerifyCase("add_relu+backward", $"[{n}]", 1e-6, 1e-6, d => AddRelu(d, n));
        }
    }

    static (double[], float[]) Binary(Device d, int n, int op)
    {
        var r = new Rng((ulong)n);
        var a = VerifyData.Floats(r, n); var b = VerifyData.Floats(r, n);
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(d, a, n); var tb = Tensor.FromArray(d, b, n); var y = Tensor.Empty(d, n);
        if (op == 0) Elementwise.Add(d, y.Data, ta.Data, tb.Data); else Elementwise.Mul(d, y.Data, ta.Data, tb.Data);
        var e = op == 0 ? Elementwise.Reference.Add(VerifyData.D(a), VerifyData.D(b)) : Elementwise.Reference.Mul(VerifyData.D(a), VerifyData.D(b));
        return (e, y.ToArray());
    }

    static (double[], float[]) Axpby(Device d, int n)
    {
        var r = new Rng((ulong)n + 1);
        var x = VerifyData.Floats(r, n); var y0 = VerifyData.Floats(r, n);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n); var ty = Tensor.FromArray(d, y0, n);
        Elementwise.Axpby(d, ty.Data, tx.Data, 0.75f, -1.5f);
        return (Elementwise.Reference.Axpby(VerifyData.D(y0), VerifyData.D(x), 0.75, -1.5), ty.ToArray());
    }

    static (double[], float[]) Relu(Device d, int n)
    {
        var r = new Rng((ulong)n + 2);
        var x = VerifyData.Floats(r, n); var dy = VerifyData.Floats(r, n);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n); var tdy = Tensor.FromArray(d, dy, n);
        var y = Tensor.Empty(d, n); var dx = Tensor.Empty(d, n);
        Elementwise.Relu(d, y.Data, tx.Data);
        Elementwise.ReluBackward(d, dx.Data, tdy.Data, y.Data);
        var e = Elementwise.Reference.Relu(VerifyData.D(x)).Concat(Elementwise.Reference.ReluBackward(VerifyData.D(dy), VerifyData.D(x))).ToArray();
        return (e, y.ToArray().Concat(dx.ToArray()).ToArray());
    }

    static (double[], float[]) AddRelu(Device d, int n)
    {
        var r = new Rng((ulong)n + 3);
        var a = VerifyData.Floats(r, n); var b = VerifyData.Floats(r, n); var dy = VerifyData.Floats(r, n);
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(d, a, n); var tb = Tensor.FromArray(d, b, n); var tdy = Tensor.FromArray(d, dy, n);
        var y = Tensor.Empty(d, n); var dz = Tensor.Empty(d, n);
        Elementwise.AddRelu(d, y.Data, ta.Data, tb.Data);
        Elementwise.ReluBackward(d, dz.Data, tdy.Data, y.Data);
        var ey = Elementwise.Reference.AddRelu(VerifyData.D(a), VerifyData.D(b));
        var edz = Elementwise.Reference.ReluBackward(VerifyData.D(dy), Elementwise.Reference.Add(VerifyData.D(a), VerifyData.D(b)));
        return (ey.Concat(edz).ToArray(), y.ToArray().Concat(dz.ToArray()).ToArray());
    }
}

/// <summary>Random inputs for verify cases.</summary>
public static class VerifyData
{
    public static float[] Floats(Rng r, long n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = r.Uniform(lo, hi);
        return a;
    }

    public static double[] D(float[] a) => Array.ConvertAll(a, x => (double)x);
}
