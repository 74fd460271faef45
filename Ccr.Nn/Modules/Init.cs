using Ccr.Kernels;

namespace Ccr.Nn.Modules;

/// <summary>Parameter initialisers, drawn on the host from a seeded <see cref="Rng"/> so that the same
/// seed gives the same model on any device.</summary>
public static class Init
{
    public static Tensor Uniform(Device d, Rng rng, float lo, float hi, params int[] shape)
    {
        long n = 1;
        foreach (var s in shape) n *= s;
        var v = new float[n];
        for (long i = 0; i < n; i++) v[i] = rng.Uniform(lo, hi);
        return Tensor.FromArray(d, v, shape);
    }

    public static Tensor Normal(Device d, Rng rng, float std, params int[] shape)
    {
        long n = 1;
        foreach (var s in shape) n *= s;
        var v = new float[n];
        for (long i = 0; i < n; i++) v[i] = (float)(std * rng.NextGaussian());
        return Tensor.FromArray(d, v, shape);
    }

    /// <summary>Kaiming-normal (fan_out, ReLU), as timm initialises HRNet's convolutions.</summary>
    public static void KaimingNormalFanOut(Conv2d conv, Rng rng)
    {
        float std = MathF.Sqrt(2f / (conv.OutChannels * conv.KernelSize * conv.KernelSize));
        using var t = Normal(conv.Weight.Device, rng, std, conv.Weight.Shape);
        conv.Weight.Data.CopyFrom(t.ToArray());
    }
}
