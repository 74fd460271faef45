using Ccr.Kernels.Ops;
namespace Ccr.Kernels.Contrastive;

internal static partial class CcrLabels
{
    /// <summary>float64 reference of the label preparation (same layouts), written per output pixel
    /// from the definition. The source index follows PyTorch's float rule (<see cref="Resize.NearestSrc"/>);
    /// that rule itself is checked against PyTorch's F.interpolate by a golden fixture.</summary>
    public static class Reference
    {
        public static (double[] Values, int[] Valid) Prepare(double[] src, int n, int channels, int inH, int inW, int outH, int outW,
                                                             CcrLabelMetric metric, bool binarise)
        {
            int ohw = outH * outW, ihw = inH * inW;
            var values = new double[n * channels * ohw];
            var valid = new int[n * ohw];
            for (int b = 0; b < n; b++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                    {
                        int sy = Resize.NearestSrc(oy, inH, outH, Resize.Scale(inH, outH));
                        int sx = Resize.NearestSrc(ox, inW, outW, Resize.Scale(inW, outW));
                        var v = Enumerable.Range(0, channels).Select(c => src[(b * channels + c) * ihw + sy * inW + sx]).ToArray();
                        bool ok = v.All(double.IsFinite) && metric switch
                        {
                            CcrLabelMetric.Discrete => v[0] != IgnoreIndex,
                            CcrLabelMetric.L1 => v[0] > 0,
                            _ => v.Any(x => x != 0),
                        };
                        int o = oy * outW + ox;
                        valid[b * ohw + o] = ok ? 1 : 0;
                        for (int c = 0; c < channels; c++)
                            values[(b * channels + c) * ohw + o] = !ok ? (metric == CcrLabelMetric.Discrete ? IgnoreIndex : 0)
                                : binarise ? (v[c] > 0.5 ? 1 : 0) : v[c];
                    }
            return (values, valid);
        }
    }
}
