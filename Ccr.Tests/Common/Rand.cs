using Ccr.Nn;

namespace Ccr.Tests.Common;

/// <summary>Fresh random test inputs: each test draws from its own seeded generator, and the seed
/// is printed in failure messages through the test's own description.</summary>
public static class Rand
{
    public static Rng New(int seed) => new((ulong)seed);

    public static float[] Floats(Rng r, long n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = r.Uniform(lo, hi);
        return a;
    }

    public static int[] Ints(Rng r, long n, int hiExclusive)
    {
        var a = new int[n];
        for (long i = 0; i < n; i++) a[i] = r.NextInt(hiExclusive);
        return a;
    }

    public static double[] D(float[] a) => Array.ConvertAll(a, x => (double)x);
    public static float[] F(double[] a) => Array.ConvertAll(a, x => (float)x);

    /// <summary>Central finite-difference gradient of a scalar function of a float64 vector.</summary>
    public static double[] NumericGrad(Func<double[], double> f, double[] x, double h = 1e-6)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h; double fp = f(x);
            x[i] = keep - h; double fm = f(x);
            x[i] = keep;
            g[i] = (fp - fm) / (2 * h);
        }
        return g;
    }

    /// <summary>sum(out * dout): the scalar whose gradient with respect to out is dout (llm.c's fakeloss).</summary>
    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
