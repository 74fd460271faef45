using Ccr.Kernels;

namespace Ccr.Nn.Modules;

/// <summary>torch.nn.Conv2d with square kernel, stride, padding and dilation; weight (Cout, Cin, k, k),
/// optional bias (Cout). Initialised as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).</summary>
public sealed class Conv2d : Layer
{
    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    /// <summary>Arithmetic of this layer's GEMMs (forward and both gradients) on the CUDA variant;
    /// fp32 until set, usually for a whole model by <see cref="Module.To(MathPrecision)"/>.</summary>
    public MathPrecision Precision { get; set; } = MathPrecision.Fp32;

    public Conv2d(Device d, Rng rng, int inChannels, int outChannels, int kernelSize,
                  int stride = 1, int padding = 0, int dilation = 1, bool bias = true)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0 || dilation <= 0)
            throw new ArgumentException($"Conv2d({inChannels}, {outChannels}, k={kernelSize}, s={stride}, p={padding}, d={dilation}): bad arguments");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        Stride = stride; Padding = padding; Dilation = dilation;
        float bound = 1f / MathF.Sqrt(inChannels * kernelSize * kernelSize);
        Weight = Param("weight", Init.Uniform(d, rng, -bound, bound, outChannels, inChannels, kernelSize, kernelSize));
        if (bias) Bias = Param("bias", Init.Uniform(d, rng, -bound, bound, outChannels));
    }

    protected override void ApplyPrecision(MathPrecision precision) => Precision = precision;

    public override Tensor Forward(Tensor x) => Functional.F.Conv2d(x, Weight, Bias, Stride, Padding, Dilation, Precision);

    /// <summary>Multiply-adds of one forward pass on an input of HxW (per image).</summary>
    public long Macs(int h, int w)
    {
        int oh = (h + 2 * Padding - Dilation * (KernelSize - 1) - 1) / Stride + 1;
        int ow = (w + 2 * Padding - Dilation * (KernelSize - 1) - 1) / Stride + 1;
        return (long)oh * ow * OutChannels * InChannels * KernelSize * KernelSize;
    }
}
