using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Training.MultiTask;


namespace Ccr.Train.Commands;

/// <summary>
/// How large an image <c>infer</c> can process within memory: the device pool's limit and the host
/// budget (<see cref="HostMemory"/>; on the CPU device the pool is host memory too). The network's
/// memory grows with the pixel count, so a forward pass on a small probe image measures the pool
/// bytes per pixel; the host arrays around it (decoded image, normalised and padded copies, every
/// output and prediction, the picture) are counted per pixel from the output channels. An image
/// that does not fit is downscaled until it does (and said so), or skipped when even decoding it
/// would not fit.
/// </summary>
public sealed class InferBudget
{
    const int ProbeSide = 64;
    readonly long _poolBase, _poolLimit, _hostBudget;
    readonly double _poolPerPixel, _hostPerPixel;
    readonly bool _cpu;

    public InferBudget(MultiTaskModel model, Device device, (long Bytes, string Source)? host)
    {
        _cpu = !device.IsCuda;
        var pool = device.Pool;
        _poolBase = pool.BytesInUse + pool.BytesCached; // the weights
        int channels = 0;
        try
        {
            using var scope = new TensorScope();
            using var _ = new NoGrad();
            var outputs = model.Forward(Tensor.FromArray(device, new float[3 * ProbeSide * ProbeSide], 1, 3, ProbeSide, ProbeSide));
            foreach (var t in model.Tasks) channels += outputs[t.Name].Prediction.Dim(1);
            device.Synchronize();
        }
        catch (OutOfMemoryException e)
        {
            throw new OutOfMemoryException($"{e.Message} (the network on a {ProbeSide}x{ProbeSide} probe image); try smaller images " +
                "or a larger CCR_MEMORY_LIMIT_MB" + (device.IsCuda ? ", or --device cpu" : ""), e);
        }
        // the pool keeps what it allocated: in use + cached is the forward pass's peak
        _poolPerPixel = Math.Max(1.0, (pool.BytesInUse + pool.BytesCached - _poolBase) / (double)(ProbeSide * ProbeSide));
        _hostPerPixel = 4 * 3 * 3 + 8.0 * channels + 6.0 * (model.Tasks.Count + 1);
        _poolLimit = pool.LimitBytes ?? device.Accelerator.MemorySize;
        _hostBudget = host?.Bytes ?? long.MaxValue;
    }

    /// <summary>The bytes an image of <paramref name="h"/> x <paramref name="w"/> needs: (pool, host).</summary>
    public (double Pool, double Host) Need(int h, int w)
    {
        double padded = (double)((h + 31) / 32 * 32) * ((w + 31) / 32 * 32);
        double pool = _poolBase + _poolPerPixel * padded;
        return (pool, _hostPerPixel * h * w + (_cpu ? pool : 0));
    }

    public bool Fits(int h, int w)
    {
        var (pool, host) = Need(h, w);
        return pool <= _poolLimit && host <= _hostBudget;
    }

    /// <summary>Decoding alone (ImageSharp's RGB bytes and the float copy) fits the host budget.</summary>
    public bool CanDecode(int h, int w) => 15.0 * h * w + (_cpu ? _poolBase : 0) <= _hostBudget;

    /// <summary>The largest size of the same aspect ratio (each side at least 32) that fits, or null.</summary>
    public (int H, int W)? Fit(int h, int w)
    {
        if (Fits(h, w)) return (h, w);
        double lo = 0, hi = 1;
        for (int i = 0; i < 40; i++)
        {
            double mid = (lo + hi) / 2;
            if (Fits(Math.Max(1, (int)(h * mid)), Math.Max(1, (int)(w * mid)))) lo = mid; else hi = mid;
        }
        int nh = (int)(h * lo), nw = (int)(w * lo);
        return nh >= 32 && nw >= 32 && Fits(nh, nw) ? (nh, nw) : null;
    }

    public string Describe(int h, int w)
    {
        var (pool, host) = Need(h, w);
        return $"needs about {HostMemory.Mib((long)pool)} of device memory (limit {HostMemory.Mib(_poolLimit)}) and " +
               $"{HostMemory.Mib((long)host)} of host memory (budget {(_hostBudget == long.MaxValue ? "unknown" : HostMemory.Mib(_hostBudget))})";
    }

    /// <summary>(3, H, W) downscaled to (3, nh, nw) by averaging each output pixel's source box.</summary>
    public static float[] Downscale(float[] img, int h, int w, int nh, int nw)
    {
        var r = new float[3 * nh * nw];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < nh; y++)
            {
                int y0 = (int)((long)y * h / nh), y1 = Math.Max(y0 + 1, (int)((long)(y + 1) * h / nh));
                for (int x = 0; x < nw; x++)
                {
                    int x0 = (int)((long)x * w / nw), x1 = Math.Max(x0 + 1, (int)((long)(x + 1) * w / nw));
                    double s = 0;
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++) s += img[((long)c * h + yy) * w + xx];
                    r[(c * nh + y) * nw + x] = (float)(s / ((y1 - y0) * (x1 - x0)));
                }
            }
        return r;
    }
}
