using Ccr.Kernels;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Nn.Models;
using Ccr.Nn.Modules;

namespace Ccr.Training.MultiTask;

/// <summary>A task's decoder: levels at strides 4..32 in, the task's feature map at stride 4 out
/// (what the contrastive regulariser acts on), and the final 1x1 convolution to the task's channels.</summary>
public abstract class TaskDecoder : Module
{
    public abstract Conv2d Classifier { get; }
    public abstract int FeatureChannels { get; }
    public abstract Tensor Features(IReadOnlyList<Tensor> levels);
    public abstract Chw FeatureShape(IReadOnlyList<Chw> levels, MacCounter macs);
}

/// <summary>
/// The FPN neck (Lin et al. 2017) shared by the baseline's task decoders: lateral 1x1 convs to
/// <see cref="Channels"/>, a top-down path adding each coarser level upsampled (nearest, as mmdet's
/// FPN) to the next finer, and a 3x3 output conv per level.
/// </summary>
public sealed class Fpn : Module
{
    public int Channels { get; }
    public ModuleList<Conv2d> Lateral { get; }
    public ModuleList<Conv2d> Output { get; }

    public Fpn(Device d, Rng rng, int[] inChannels, int channels)
    {
        Channels = channels;
        Lateral = Child("lateral_convs", new ModuleList<Conv2d>());
        Output = Child("fpn_convs", new ModuleList<Conv2d>());
        foreach (var c in inChannels)
        {
            Lateral.Add(new Conv2d(d, rng, c, channels, 1));
            Output.Add(new Conv2d(d, rng, channels, channels, 3, padding: 1));
        }
    }

    public Tensor[] Forward(IReadOnlyList<Tensor> xs)
    {
        int n = Lateral.Count;
        var lat = new Tensor[n];
        for (int i = 0; i < n; i++) lat[i] = Lateral[i].Forward(xs[i]);
        for (int i = n - 2; i >= 0; i--)
            lat[i] = F.Add(lat[i], F.ResizeNearest(lat[i + 1], lat[i].Dim(2), lat[i].Dim(3)));
        return lat.Select((t, i) => Output[i].Forward(t)).ToArray();
    }

    public Chw[] OutShapes(IReadOnlyList<Chw> xs, MacCounter macs)
    {
        var r = new Chw[xs.Count];
        for (int i = 0; i < xs.Count; i++) r[i] = Shapes.Of(Output[i], Shapes.Of(Lateral[i], xs[i], macs), macs);
        return r;
    }
}

/// <summary>
/// Semantic FPN's decoder (Kirillov et al. 2019): level i (stride 4*2^i) goes through max(1, i)
/// conv3x3-BN-ReLU steps, each followed by a 2x bilinear upsampling while above stride 4; the four
/// stride-4 maps are summed (the feature map) and a 1x1 conv gives the task's channels.
/// </summary>
public sealed class SemanticFpnDecoder : TaskDecoder
{
    public ModuleList<Sequential> ScaleHeads { get; }
    readonly Conv2d _cls;
    readonly int _channels;
    public override Conv2d Classifier => _cls;
    public override int FeatureChannels => _channels;

    public SemanticFpnDecoder(Device d, Rng rng, int inChannels, int channels, int outChannels, int levels = 4)
    {
        _channels = channels;
        ScaleHeads = Child("scale_heads", new ModuleList<Sequential>());
        for (int i = 0; i < levels; i++)
        {
            var s = new Sequential();
            for (int k = 0; k < Math.Max(1, i); k++)
            {
                s.Add(new Conv2d(d, rng, k == 0 ? inChannels : channels, channels, 3, padding: 1, bias: false));
                s.Add(new BatchNorm2d(d, channels));
                s.Add(new ReLU());
                // the 2x upsamplings happen in Features (their target size is the next finer level's)
            }
            ScaleHeads.Add(s);
        }
        _cls = Child("conv_seg", new Conv2d(d, rng, channels, outChannels, 1));
    }

    public override Tensor Features(IReadOnlyList<Tensor> levels)
    {
        Tensor? sum = null;
        for (int i = 0; i < ScaleHeads.Count; i++)
        {
            var s = ScaleHeads[i];
            var y = levels[i];
            int steps = s.Count / 3;
            for (int k = 0; k < steps; k++)
            {
                y = ((BatchNorm2d)s[3 * k + 1]).ForwardRelu(s[3 * k].Forward(y)); // conv, then BN + ReLU fused
                if (i > 0)  // up one level: 2x, to that level's exact size
                {
                    var target = levels[i - k - 1];
                    y = F.ResizeBilinear(y, target.Dim(2), target.Dim(3));
                }
            }
            sum = sum == null ? y : F.Add(sum, y);
        }
        return sum!;
    }

    public override Chw FeatureShape(IReadOnlyList<Chw> levels, MacCounter macs)
    {
        for (int i = 0; i < ScaleHeads.Count; i++)
        {
            var y = Shapes.Of(ScaleHeads[i], levels[i], macs);
            if (y.C != _channels) throw new InvalidOperationException("semantic FPN shape pass");
        }
        return new Chw(_channels, levels[0].H, levels[0].W);
    }
}

/// <summary>
/// MTI-Net's HRNet head: every level upsampled (bilinear) to stride 4 and concatenated, then
/// Conv1x1-BN-ReLU (the feature map) and Conv1x1 to the task's channels.
/// </summary>
public sealed class HrNetHead : TaskDecoder
{
    public Conv2d Conv { get; }
    public BatchNorm2d Bn { get; }
    readonly Conv2d _cls;
    public override Conv2d Classifier => _cls;
    public override int FeatureChannels => Conv.OutChannels;

    public HrNetHead(Device d, Rng rng, int[] inChannels, int outChannels)
    {
        int c = inChannels.Sum();
        // children "0".."3" as MTI-Net's nn.Sequential(conv, bn, relu, conv)
        Conv = Child("0", new Conv2d(d, rng, c, c, 1));
        Bn = Child("1", new BatchNorm2d(d, c));
        _cls = Child("3", new Conv2d(d, rng, c, outChannels, 1));
    }

    public override Tensor Features(IReadOnlyList<Tensor> levels)
    {
        int h = levels[0].Dim(2), w = levels[0].Dim(3);
        var up = levels.Select((t, i) => i == 0 ? t : F.ResizeBilinear(t, h, w)).ToArray();
        return Bn.ForwardRelu(Conv.Forward(F.Concat(up)));
    }

    public override Chw FeatureShape(IReadOnlyList<Chw> levels, MacCounter macs) =>
        Shapes.Of(Conv, new Chw(levels.Sum(l => l.C), levels[0].H, levels[0].W), macs);
}
