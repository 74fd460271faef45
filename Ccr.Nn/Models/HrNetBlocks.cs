using Ccr.Kernels;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using Ccr.Nn.Functional;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Models;

/// <summary>torch.nn.ModuleList: children named "0", "1", ...; no forward of its own.</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    readonly List<T> _items = new();

    public ModuleList<T> Add(T m)
    {
        Child(_items.Count.ToString(), m);
        _items.Add(m);
        return this;
    }

    /// <summary>A child under a name of its own (a ModuleDict entry).</summary>
    public ModuleList<T> AddNamed(string name, T m)
    {
        Child(name, m);
        _items.Add(m);
        return this;
    }

    public int Count => _items.Count;
    public T this[int i] => _items[i];
    public IReadOnlyList<T> Items => _items;
}

/// <summary>Either residual block of timm's resnet.py as HRNet uses it; <see cref="Expansion"/> is
/// 1 (BasicBlock) or 4 (Bottleneck).</summary>
public abstract class ResidualBlock : Layer, IShapeLayer
{
    public abstract int Expansion { get; }
    public Sequential? Downsample { get; protected init; }

    public abstract Chw OutShape(Chw x, MacCounter macs);

    /// <summary>timm's rule: a projection shortcut (1x1 conv + BN) when stride or width changes.</summary>
    protected static Sequential? MakeDownsample(Device d, Rng rng, int inplanes, int outplanes, int stride)
    {
        if (stride == 1 && inplanes == outplanes) return null;
        return new Sequential(
            new Conv2d(d, rng, inplanes, outplanes, 1, stride: stride, bias: false),
            new BatchNorm2d(d, outplanes));
    }

    protected Tensor Shortcut(Tensor x) => Downsample == null ? x : Downsample.Forward(x);

    protected Chw ShortcutShape(Chw x, MacCounter macs) => Downsample == null ? x : Shapes.Of(Downsample, x, macs);
}

/// <summary>conv3x3-BN-ReLU-conv3x3-BN, + shortcut, ReLU (timm BasicBlock, expansion 1).</summary>
public sealed class BasicBlock : ResidualBlock
{
    public override int Expansion => 1;
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }

    public BasicBlock(Device d, Rng rng, int inplanes, int planes, int stride = 1)
    {
        Conv1 = Child("conv1", new Conv2d(d, rng, inplanes, planes, 3, stride: stride, padding: 1, bias: false));
        Bn1 = Child("bn1", new BatchNorm2d(d, planes));
        Conv2 = Child("conv2", new Conv2d(d, rng, planes, planes, 3, padding: 1, bias: false));
        Bn2 = Child("bn2", new BatchNorm2d(d, planes));
        var ds = MakeDownsample(d, rng, inplanes, planes, stride);
        if (ds != null) Downsample = Child("downsample", ds);
    }

    public override Tensor Forward(Tensor x)
    {
        var y = Bn1.ForwardRelu(Conv1.Forward(x));
        return Bn2.ForwardRelu(Conv2.Forward(y), Shortcut(x)); // relu(bn2(conv2(y)) + shortcut), fused
    }

    public override Chw OutShape(Chw x, MacCounter macs)
    {
        var y = Shapes.Of(Bn2, Shapes.Of(Conv2, Shapes.Of(Conv1, x, macs), macs), macs);
        var s = ShortcutShape(x, macs);
        if (y != s) throw new ArgumentException($"shape pass: BasicBlock branch {y} and shortcut {s} differ");
        return y;
    }
}

/// <summary>conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1(4x)-BN, + shortcut, ReLU (timm Bottleneck).</summary>
public sealed class Bottleneck : ResidualBlock
{
    public override int Expansion => 4;
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public Conv2d Conv3 { get; }
    public BatchNorm2d Bn3 { get; }

    public Bottleneck(Device d, Rng rng, int inplanes, int planes, int stride = 1)
    {
        Conv1 = Child("conv1", new Conv2d(d, rng, inplanes, planes, 1, bias: false));
        Bn1 = Child("bn1", new BatchNorm2d(d, planes));
        Conv2 = Child("conv2", new Conv2d(d, rng, planes, planes, 3, stride: stride, padding: 1, bias: false));
        Bn2 = Child("bn2", new BatchNorm2d(d, planes));
        Conv3 = Child("conv3", new Conv2d(d, rng, planes, planes * 4, 1, bias: false));
        Bn3 = Child("bn3", new BatchNorm2d(d, planes * 4));
        var ds = MakeDownsample(d, rng, inplanes, planes * 4, stride);
        if (ds != null) Downsample = Child("downsample", ds);
    }

    public override Tensor Forward(Tensor x)
    {
        var y = Bn1.ForwardRelu(Conv1.Forward(x));
        y = Bn2.ForwardRelu(Conv2.Forward(y));
        return Bn3.ForwardRelu(Conv3.Forward(y), Shortcut(x)); // relu(bn3(conv3(y)) + shortcut), fused
    }

    public override Chw OutShape(Chw x, MacCounter macs)
    {
        var y = Shapes.Of(Conv1, x, macs);
        y = Shapes.Of(Conv3, Shapes.Of(Conv2, y, macs), macs);
        var s = ShortcutShape(x, macs);
        if (y != s) throw new ArgumentException($"shape pass: Bottleneck branch {y} and shortcut {s} differ");
        return y;
    }
}

/// <summary>
/// A fuse path from a lower-resolution branch j to branch i &lt; j: conv1x1 + BN (children "0", "1"
/// as in timm's Sequential) and nearest upsampling. timm upsamples by scale_factor 2^(j-i); we
/// resize to branch i's size, which is the same map whenever timm's shapes agree (inputs divisible
/// by 32) and still works for other input sizes.
/// </summary>
public sealed class FuseUp : Module
{
    public Conv2d Conv { get; }
    public BatchNorm2d Bn { get; }

    public FuseUp(Device d, Rng rng, int inChannels, int outChannels)
    {
        Conv = Child("0", new Conv2d(d, rng, inChannels, outChannels, 1, bias: false));
        Bn = Child("1", new BatchNorm2d(d, outChannels));
    }

    public Tensor Forward(Tensor x, int outH, int outW) =>
        F.ResizeNearest(Bn.Forward(Conv.Forward(x)), outH, outW);

    public Chw OutShape(Chw x, Chw target, MacCounter macs)
    {
        var y = Shapes.Of(Bn, Shapes.Of(Conv, x, macs), macs);
        return new Chw(y.C, target.H, target.W);
    }
}

/// <summary>
/// timm's HighResolutionModule: each branch runs its residual blocks, then every output i is
/// ReLU(sum over j of fuse(i, j)(x_j)): identity for j == i, <see cref="FuseUp"/> for j &gt; i, and
/// for j &lt; i a chain of i-j stride-2 conv3x3+BN (ReLU after all but the last). Always
/// multi-scale output (timm builds every stage so, stage 4 included).
/// </summary>
public sealed class HrModule : Module
{
    public int NumBranches { get; }
    /// <summary>Channels of each branch's output (input channels of the next module).</summary>
    public int[] OutChannels { get; }
    public ModuleList<Sequential> Branches { get; }
    /// <summary>fuse_layers[i][j]: Identity, FuseUp or Sequential of downsampling steps; null with one branch.</summary>
    public ModuleList<ModuleList<Module>>? FuseLayers { get; }

    public HrModule(Device d, Rng rng, bool bottleneck, int[] numBlocks, int[] inChannels, int[] numChannels)
    {
        NumBranches = numBlocks.Length;
        if (inChannels.Length != NumBranches || numChannels.Length != NumBranches)
            throw new ArgumentException($"HrModule: {NumBranches} branches but {inChannels.Length} input widths and {numChannels.Length} widths");
        int expansion = bottleneck ? 4 : 1;
        OutChannels = numChannels.Select(c => c * expansion).ToArray();

        Branches = Child("branches", new ModuleList<Sequential>());
        for (int b = 0; b < NumBranches; b++)
        {
            var seq = new Sequential();
            int inC = inChannels[b];
            for (int k = 0; k < numBlocks[b]; k++)
            {
                seq.Add(bottleneck ? new Bottleneck(d, rng, inC, numChannels[b]) : new BasicBlock(d, rng, inC, numChannels[b]));
                inC = OutChannels[b];
            }
            Branches.Add(seq);
        }

        if (NumBranches == 1) return;  // timm: fuse_layers is an Identity, no fuse ReLU
        var c = OutChannels;
        FuseLayers = Child("fuse_layers", new ModuleList<ModuleList<Module>>());
        for (int i = 0; i < NumBranches; i++)
        {
            var row = new ModuleList<Module>();
            for (int j = 0; j < NumBranches; j++)
            {
                if (j > i) row.Add(new FuseUp(d, rng, c[j], c[i]));
                else if (j == i) row.Add(new Identity());
                else
                {
                    var chain = new Sequential();
                    for (int k = 0; k < i - j; k++)
                    {
                        bool last = k == i - j - 1;
                        int outC = last ? c[i] : c[j];
                        var step = new Sequential(new Conv2d(d, rng, c[j], outC, 3, stride: 2, padding: 1, bias: false),
                                                  new BatchNorm2d(d, outC));
                        if (!last) step.Add(new ReLU());
                        chain.Add(step);
                    }
                    row.Add(chain);
                }
            }
            FuseLayers.Add(row);
        }
    }

    public Tensor[] Forward(IReadOnlyList<Tensor> xs)
    {
        if (xs.Count != NumBranches) throw new ArgumentException($"HrModule: {xs.Count} inputs for {NumBranches} branches");
        var b = new Tensor[NumBranches];
        for (int i = 0; i < NumBranches; i++) b[i] = Branches[i].Forward(xs[i]);
        if (FuseLayers == null) return b;

        var outs = new Tensor[NumBranches];
        for (int i = 0; i < NumBranches; i++)
        {
            Tensor? y = null;
            for (int j = 0; j < NumBranches; j++)
            {
                var f = FuseLayers[i][j] switch
                {
                    FuseUp up => up.Forward(b[j], b[i].Dim(2), b[i].Dim(3)),
                    Layer l => l.Forward(b[j]),
                    var m => throw new InvalidOperationException($"HrModule: unexpected fuse module {m.GetType().Name}"),
                };
                // the last term's add and the ReLU run as one pass
                y = y == null ? f : j == NumBranches - 1 ? F.AddRelu(y, f) : F.Add(y, f);
            }
            outs[i] = y!;
        }
        return outs;
    }

    public Chw[] OutShapes(IReadOnlyList<Chw> xs, MacCounter macs)
    {
        var b = new Chw[NumBranches];
        for (int i = 0; i < NumBranches; i++) b[i] = Shapes.Of(Branches[i], xs[i], macs);
        if (FuseLayers == null) return b;
        var outs = new Chw[NumBranches];
        for (int i = 0; i < NumBranches; i++)
            for (int j = 0; j < NumBranches; j++)
            {
                var f = FuseLayers[i][j] switch
                {
                    FuseUp up => up.OutShape(b[j], b[i], macs),
                    Layer l => Shapes.Of(l, b[j], macs),
                    _ => throw new InvalidOperationException("HrModule: unexpected fuse module"),
                };
                if (f != b[i]) throw new ArgumentException($"shape pass: fuse {j}->{i} gives {f}, branch {i} is {b[i]}");
                outs[i] = f;
            }
        return outs;
    }
}
