using Ccr.Kernels;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using Ccr.Nn.Functional;
using Ccr.Nn.Modules;

namespace Ccr.Nn.Models;

/// <summary>
/// HRNet as timm 1.0 builds it with features_only=True, feature_location='' and out_indices
/// (1, 2, 3, 4): stem (two stride-2 conv3x3-BN-ReLU), layer1 (residual blocks), then stages 2-4,
/// each preceded by a transition that adapts widths of existing branches and adds one stride-2
/// branch from the last one. <see cref="Forward"/> returns stage 4's four fused outputs at strides
/// 4, 8, 16, 32. Parameter and buffer names are timm's, so its state dict loads by name.
/// </summary>
public sealed class HrNet : Module
{
    public HrNetConfig Config { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public Sequential Layer1 { get; }
    /// <summary>transition1..3; entry i is Identity, a conv3x3-BN-ReLU width adapter, or (new
    /// branch) a Sequential of stride-2 conv3x3-BN-ReLU steps.</summary>
    public ModuleList<Layer>[] Transitions { get; }
    /// <summary>stage2..4.</summary>
    public ModuleList<HrModule>[] Stages { get; }

    public int[] FeatureChannels { get; }

    public HrNet(Device d, Rng rng, HrNetConfig cfg)
    {
        Config = cfg;
        Conv1 = Child("conv1", new Conv2d(d, rng, 3, cfg.StemWidth, 3, stride: 2, padding: 1, bias: false));
        Bn1 = Child("bn1", new BatchNorm2d(d, cfg.StemWidth));
        Conv2 = Child("conv2", new Conv2d(d, rng, cfg.StemWidth, cfg.StemOut, 3, stride: 2, padding: 1, bias: false));
        Bn2 = Child("bn2", new BatchNorm2d(d, cfg.StemOut));

        var s1 = cfg.Stage1;
        if (s1.Branches != 1 || s1.NumModules != 1)
            throw new ArgumentException($"{cfg.Name}: stage 1 must have one branch and one module");
        Layer1 = Child("layer1", new Sequential());
        int inC = cfg.StemOut;
        for (int k = 0; k < s1.NumBlocks[0]; k++)
        {
            Layer1.Add(s1.Bottleneck ? new Bottleneck(d, rng, inC, s1.NumChannels[0]) : new BasicBlock(d, rng, inC, s1.NumChannels[0]));
            inC = s1.NumChannels[0] * (s1.Bottleneck ? 4 : 1);
        }

        int[] pre = [inC];
        Transitions = new ModuleList<Layer>[3];
        Stages = new ModuleList<HrModule>[3];
        var stages = cfg.Stages;
        for (int s = 1; s < 4; s++)
        {
            var sc = stages[s];
            if (sc.Branches != s + 1 || sc.NumChannels.Length != s + 1)
                throw new ArgumentException($"{cfg.Name}: stage {s + 1} must have {s + 1} branches");
            int[] cur = sc.NumChannels.Select(c => c * (sc.Bottleneck ? 4 : 1)).ToArray();
            Transitions[s - 1] = Child($"transition{s}", MakeTransition(d, rng, pre, cur));
            Stages[s - 1] = Child($"stage{s + 1}", new ModuleList<HrModule>());
            int[] inChs = cur;
            for (int m = 0; m < sc.NumModules; m++)
            {
                var mod = new HrModule(d, rng, sc.Bottleneck, sc.NumBlocks, inChs, sc.NumChannels);
                Stages[s - 1].Add(mod);
                inChs = mod.OutChannels;
            }
            pre = inChs;
        }
        FeatureChannels = pre;
        InitWeights(rng);
    }

    /// <summary>timm's _make_transition_layer.</summary>
    static ModuleList<Layer> MakeTransition(Device d, Rng rng, int[] pre, int[] cur)
    {
        var list = new ModuleList<Layer>();
        for (int i = 0; i < cur.Length; i++)
        {
            if (i < pre.Length)
            {
                if (cur[i] != pre[i])
                    list.Add(new Sequential(new Conv2d(d, rng, pre[i], cur[i], 3, padding: 1, bias: false),
                                            new BatchNorm2d(d, cur[i]), new ReLU()));
                else list.Add(new Identity());
            }
            else
            {
                var steps = new Sequential();
                for (int j = 0; j < i + 1 - pre.Length; j++)
                {
                    int inC = pre[^1];
                    int outC = j == i - pre.Length ? cur[i] : inC;
                    steps.Add(new Sequential(new Conv2d(d, rng, inC, outC, 3, stride: 2, padding: 1, bias: false),
                                             new BatchNorm2d(d, outC), new ReLU()));
                }
                list.Add(steps);
            }
        }
        return list;
    }

    /// <summary>timm's init_weights: Kaiming-normal (fan_out, ReLU) convolutions; batch norm 1 / 0.</summary>
    void InitWeights(Rng rng)
    {
        foreach (var conv in Walk(this).OfType<Conv2d>()) Init.KaimingNormalFanOut(conv, rng);
    }

    internal static IEnumerable<Module> Walk(Module m)
    {
        yield return m;
        foreach (var (_, c) in m.Children())
            foreach (var x in Walk(c)) yield return x;
    }

    /// <summary>Features of x (N, 3, H, W): (N, C_i, H/2^(i+2), W/2^(i+2)) for i = 0..3.</summary>
    public Tensor[] Forward(Tensor x)
    {
        F.Rank("hrnet", x, 4, "(N, 3, H, W)");
        if (x.Dim(1) != 3) throw new ArgumentException($"hrnet: expected 3 input channels, got {x.Describe()}");
        var y = Bn1.ForwardRelu(Conv1.Forward(x));
        y = Bn2.ForwardRelu(Conv2.Forward(y));
        y = Layer1.Forward(y);

        Tensor[] xl = Transitions[0].Items.Select(t => t.Forward(y)).ToArray();
        for (int s = 0; s < 3; s++)
        {
            if (s > 0)
            {
                var prev = xl;
                // timm: identity transitions pass branch i through; the others (and new branches) read the last branch
                xl = Transitions[s].Items.Select((t, i) => t is Identity ? prev[i] : t.Forward(prev[^1])).ToArray();
            }
            foreach (var m in Stages[s].Items) xl = m.Forward(xl);
        }
        return xl;
    }

    /// <summary>The shape-only pass: per-image output shapes of the stem, layer1 and each stage,
    /// reported through <paramref name="onStage"/>, and the four feature shapes.</summary>
    public Chw[] OutShapes(Chw x, MacCounter macs, Action<string, Chw[]>? onStage = null)
    {
        if (x.C != 3) throw new ArgumentException($"hrnet shape pass: expected 3 input channels, got {x}");
        var y = Shapes.Of(Bn2, Shapes.Of(Conv2, Shapes.Of(Conv1, x, macs), macs), macs);
        onStage?.Invoke("stem", [y]);
        y = Shapes.Of(Layer1, y, macs);
        onStage?.Invoke("layer1", [y]);
        Chw[] xl = Transitions[0].Items.Select(t => Shapes.Of(t, y, macs)).ToArray();
        for (int s = 0; s < 3; s++)
        {
            if (s > 0)
            {
                var prev = xl;
                xl = Transitions[s].Items.Select((t, i) => t is Identity ? prev[i] : Shapes.Of(t, prev[^1], macs)).ToArray();
            }
            foreach (var m in Stages[s].Items) xl = m.OutShapes(xl, macs);
            onStage?.Invoke($"stage{s + 2}", xl);
        }
        return xl;
    }
}
