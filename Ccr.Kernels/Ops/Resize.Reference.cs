namespace Ccr.Kernels.Ops;

internal static partial class Resize
{
    /// <summary>float64 host references of the resizes (PyTorch's index rules; weights in double).
    /// x (P, inH, inW), y (P, outH, outW).</summary>
    public static class Reference
    {
        /// <summary>Bilinear, align_corners=False: src = (dst + 0.5) * in / out - 0.5, clamped at 0;
        /// the second neighbour is clamped at in - 1.</summary>
        public static double[] Bilinear(double[] x, int planes, int inH, int inW, int outH, int outW)
        {
            var y = new double[(long)planes * outH * outW];
            for (int p = 0; p < planes; p++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        foreach (var (iy, ix, w) in Taps(oy, ox, inH, inW, outH, outW))
                            y[(p * outH + oy) * outW + ox] += w * x[(p * inH + iy) * inW + ix];
            return y;
        }

        /// <summary>The adjoint of <see cref="Bilinear"/>: every dy element adds its four shares.</summary>
        public static double[] BilinearBackward(double[] dy, int planes, int inH, int inW, int outH, int outW)
        {
            var dx = new double[(long)planes * inH * inW];
            for (int p = 0; p < planes; p++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        foreach (var (iy, ix, w) in Taps(oy, ox, inH, inW, outH, outW))
                            dx[(p * inH + iy) * inW + ix] += w * dy[(p * outH + oy) * outW + ox];
            return dx;
        }

        static IEnumerable<(int Y, int X, double W)> Taps(int oy, int ox, int inH, int inW, int outH, int outW)
        {
            var (y0, y1, ly) = Axis(oy, inH, outH);
            var (x0, x1, lx) = Axis(ox, inW, outW);
            yield return (y0, x0, (1 - ly) * (1 - lx));
            yield return (y0, x1, (1 - ly) * lx);
            yield return (y1, x0, ly * (1 - lx));
            yield return (y1, x1, ly * lx);
        }

        static (int I0, int I1, double L) Axis(int o, int inSize, int outSize)
        {
            double src = Math.Max(0.0, (o + 0.5) * inSize / outSize - 0.5);
            int i0 = (int)Math.Floor(src);
            return (i0, Math.Min(i0 + 1, inSize - 1), src - i0);
        }

        /// <summary>Nearest: x[floor(dst * in / out)] with PyTorch's float index rule (NearestSrc).</summary>
        public static double[] Nearest(double[] x, int planes, int inH, int inW, int outH, int outW)
        {
            var y = new double[(long)planes * outH * outW];
            for (int p = 0; p < planes; p++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        y[(p * outH + oy) * outW + ox] = x[(p * inH + Src(oy, inH, outH)) * inW + Src(ox, inW, outW)];
            return y;
        }

        public static double[] NearestBackward(double[] dy, int planes, int inH, int inW, int outH, int outW)
        {
            var dx = new double[(long)planes * inH * inW];
            for (int p = 0; p < planes; p++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        dx[(p * inH + Src(oy, inH, outH)) * inW + Src(ox, inW, outW)] += dy[(p * outH + oy) * outW + ox];
            return dx;
        }

        public static int[] NearestLabels(int[] x, int planes, int inH, int inW, int outH, int outW)
        {
            var y = new int[(long)planes * outH * outW];
            for (int p = 0; p < planes; p++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        y[(p * outH + oy) * outW + ox] = x[(p * inH + Src(oy, inH, outH)) * inW + Src(ox, inW, outW)];
            return y;
        }

        static int Src(int o, int inSize, int outSize) => NearestSrc(o, inSize, outSize, Scale(inSize, outSize));
    }
}
