namespace Ccr.Kernels.Ops;

internal static partial class Elementwise
{
    /// <summary>float64 host references of the elementwise ops.</summary>
    public static class Reference
    {
        public static double[] Add(double[] a, double[] b) => Zip(a, b, (x, y) => x + y);
        public static double[] Sub(double[] a, double[] b) => Zip(a, b, (x, y) => x - y);
        public static double[] Mul(double[] a, double[] b) => Zip(a, b, (x, y) => x * y);
        public static double[] Axpby(double[] y, double[] x, double alpha, double beta) =>
            Zip(x, y, (xi, yi) => beta == 0 ? alpha * xi : alpha * xi + beta * yi);
        public static double[] Relu(double[] x) => x.Select(v => v <= 0 ? 0 : v).ToArray();
        public static double[] ReluBackward(double[] dy, double[] x) => Zip(dy, x, (g, v) => v <= 0 ? 0 : g);
        /// <summary>max(a + b, 0); its gradient with respect to either input is ReluBackward(dy, y).</summary>
        public static double[] AddRelu(double[] a, double[] b) => Relu(Add(a, b));

        static double[] Zip(double[] a, double[] b, Func<double, double, double> f)
        {
            if (a.Length != b.Length) throw new ArgumentException($"{a.Length} vs {b.Length} elements");
            var r = new double[a.Length];
            for (int i = 0; i < r.Length; i++) r[i] = f(a[i], b[i]);
            return r;
        }
    }
}
