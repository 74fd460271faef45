using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Nn.Models;
using Ccr.Nn.Modules;

namespace Ccr.Training.MultiTask;

public enum DecoderKind
{
    /// <summary>The paper's baseline: a shared FPN neck, a Semantic FPN decoder per task.</summary>
    SemanticFpn,
    /// <summary>MTI-Net's HRNet head per task.</summary>
    HrNetHead,
}

/// <summary>A task: its name (semseg, depth, normals, edge, ...) and prediction channels.</summary>
public sealed record TaskSpec(string Name, int Channels);

/// <summary>A task's outputs: the prediction at input resolution (N, K, H, W) and the feature map it
/// is made from (N, C, H/4, W/4), the input of the final 1x1 conv.</summary>
public sealed record TaskOutput(Tensor Prediction, Tensor Features);

/// <summary>
/// Backbone + (FPN neck) + per-task decoders. Parameter names: "backbone.*" (timm's HRNet names, so a
/// pretrained backbone loads with <c>StateDict.Load(model.Backbone, path, strict: false)</c>),
/// "fpn.*", "decoders.&lt;task&gt;.*". A single-task model is the same with one task. The default widths
/// are Semantic FPN's published ones (Kirillov et al. 2019, as mmsegmentation configures it): FPN 256,
/// decoder 128 (config keys model.fpn_channels and model.head_channels).
/// </summary>
public sealed class MultiTaskModel : Module
{
    public HrNet Backbone { get; }
    public Fpn? Neck { get; }
    public DecoderKind Kind { get; }
    public IReadOnlyList<TaskSpec> Tasks { get; }
    public IReadOnlyDictionary<string, TaskDecoder> Decoders { get; }

    public MultiTaskModel(Device d, Rng rng, HrNetConfig backbone, DecoderKind kind, IReadOnlyList<TaskSpec> tasks,
                          int fpnChannels = 256, int decoderChannels = 128)
    {
        if (tasks.Count == 0) throw new ArgumentException("MultiTaskModel: no tasks");
        if (tasks.Select(t => t.Name).Distinct().Count() != tasks.Count) throw new ArgumentException("MultiTaskModel: duplicate task names");
        Kind = kind;
        Tasks = tasks.ToArray();
        Backbone = Child("backbone", new HrNet(d, rng, backbone));
        if (kind == DecoderKind.SemanticFpn) Neck = Child("fpn", new Fpn(d, rng, Backbone.FeatureChannels, fpnChannels));
        var decs = Child("decoders", new ModuleList<TaskDecoder>());
        var byName = new Dictionary<string, TaskDecoder>();
        foreach (var t in tasks)
        {
            TaskDecoder dec = kind == DecoderKind.SemanticFpn
                ? new SemanticFpnDecoder(d, rng, fpnChannels, decoderChannels, t.Channels)
                : new HrNetHead(d, rng, Backbone.FeatureChannels, t.Channels);
            byName[t.Name] = dec;
        }
        // ModuleList names children by index; tasks are keyed by name instead
        foreach (var t in tasks) decs.AddNamed(t.Name, byName[t.Name]);
        Decoders = byName;
    }

    public static MultiTaskModel SingleTask(Device d, Rng rng, HrNetConfig backbone, DecoderKind kind, TaskSpec task) =>
        new(d, rng, backbone, kind, [task]);

    /// <summary>x (N, 3, H, W) → per task the prediction (N, K, H, W) and the feature map (N, C, H/4, W/4).</summary>
    public IReadOnlyDictionary<string, TaskOutput> Forward(Tensor x)
    {
        IReadOnlyList<Tensor> levels = Backbone.Forward(x);
        if (Neck != null) levels = Neck.Forward(levels);
        var r = new Dictionary<string, TaskOutput>();
        foreach (var t in Tasks)
        {
            var dec = Decoders[t.Name];
            var feat = dec.Features(levels);
            var logits = dec.Classifier.Forward(feat);
            r[t.Name] = new TaskOutput(F.ResizeBilinear(logits, x.Dim(2), x.Dim(3)), feat);
        }
        return r;
    }
}
