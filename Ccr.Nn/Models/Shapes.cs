using Ccr.Nn.Modules;

namespace Ccr.Nn.Models;

/// <summary>Shape of one image's activation, (C, H, W): the batch dimension never changes a shape
/// or a per-image cost, so the shape-only pass leaves it out.</summary>
public readonly record struct Chw(int C, int H, int W)
{
    public override string ToString() => $"({C}, {H}, {W})";
}

/// <summary>A layer that can compute its output shape and count its multiply-adds without running
/// (the model summary's shape-only pass).</summary>
public interface IShapeLayer
{
    Chw OutShape(Chw x, MacCounter macs);
}

/// <summary>Multiply-adds of one image's forward pass, accumulated by the shape-only pass. Only
/// convolutions are counted (batch norm, ReLU, sums and resizes are a few per element and are
/// left out, as fvcore and thop leave them out).</summary>
public sealed class MacCounter
{
    public long Macs { get; private set; }
    public void Add(long macs) => Macs += macs;
}

/// <summary>The shape-only pass over the foundation layers and ours.</summary>
public static class Shapes
{
    public static Chw Of(Layer layer, Chw x, MacCounter macs)
    {
        switch (layer)
        {
            case Conv2d c:
                if (x.C != c.InChannels)
                    throw new ArgumentException($"shape pass: Conv2d({c.InChannels}, {c.OutChannels}) given {x.C} channels");
                macs.Add(c.Macs(x.H, x.W));
                return new Chw(c.OutChannels, ConvOut(x.H, c), ConvOut(x.W, c));
            case BatchNorm2d bn:
                if (x.C != bn.Channels) throw new ArgumentException($"shape pass: BatchNorm2d({bn.Channels}) given {x.C} channels");
                return x;
            case ReLU or Identity:
                return x;
            case Sequential s:
                for (int i = 0; i < s.Count; i++) x = Of(s[i], x, macs);
                return x;
            case IShapeLayer l:
                return l.OutShape(x, macs);
            default:
                throw new NotSupportedException($"shape pass: no shape rule for {layer.GetType().Name}");
        }
    }

    public static int ConvOut(int n, Conv2d c) =>
        (n + 2 * c.Padding - c.Dilation * (c.KernelSize - 1) - 1) / c.Stride + 1;
}
