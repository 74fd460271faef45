using Ccr.Nn.Models;
using Ccr.Nn.Modules;
using Ccr.Training.Data;
using Ccr.Training.MultiTask;
using Google.Protobuf;
using Onnx;
using Conv2d = Ccr.Nn.Modules.Conv2d;
using static Ccr.Training.Export.OnnxGraph;

namespace Ccr.Training.Export;

/// <summary>What to export: the tasks (null: all of the model's), and the input shape (null
/// height / width: symbolic, as with <see cref="Dynamic"/>).</summary>
public sealed record OnnxExportOptions(IReadOnlyList<string>? Tasks = null, int Height = 0, int Width = 0, bool Dynamic = false);

/// <summary>
/// The trained multi-task network without the contrastive regulariser (backbone, FPN neck or not,
/// each task's decoder, each output at the input resolution) as an ONNX model, opset 17, that
/// computes what <c>eval</c> computes:
/// <list type="bullet">
/// <item>input <c>image</c>: float32 (N, 3, H, W), RGB normalised as in training ((x - mean) / std
/// with ImageNet's mean and std, x in [0, 1]; recorded in the metadata).</item>
/// <item>inside: the image zero-padded at the bottom and right to multiples of 32 (the backbone's
/// stride), the network, each output resized (bilinear, align_corners=False) to the padded size
/// and cropped back to H x W, as eval's PadToStride and crop.</item>
/// <item>one output per task, (N, K, H, W) float32, the raw network output: <c>semseg_logits</c>,
/// <c>human_parts_logits</c> (argmax = class), <c>depth</c> (metres; eval clamps at 0),
/// <c>normals</c> (unnormalised 3-vector), <c>edge_logits</c> (sigmoid = probability),
/// <c>sal_logits</c> (2 classes; softmax channel 1 = saliency).</item>
/// </list>
/// Batch norm is folded into the preceding convolution (scale and shift computed in float64, rounded
/// once to float32). Resizes are ONNX Resize with PyTorch's index rules: bilinear with
/// pytorch_half_pixel, nearest with asymmetric + floor.
/// </summary>
public static class OnnxExporter
{
    public const int Opset = 17;
    public const int IrVersion = 8;
    public const string Producer = "Ccr";

    /// <summary>The output name of a task's prediction.</summary>
    public static string OutputName(string task) => task switch
    {
        "depth" or "normals" => task,
        _ => task + "_logits",
    };

    public static ModelProto Export(MultiTaskModel model, OnnxExportOptions o, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var tasks = (o.Tasks ?? model.Tasks.Select(t => t.Name).ToList()).ToList();
        foreach (var t in tasks)
            if (!model.Decoders.ContainsKey(t))
                throw new ArgumentException($"export: task '{t}' is not in the model (it has {string.Join(", ", model.Tasks.Select(x => x.Name))})");
        if (tasks.Count == 0 || tasks.Distinct().Count() != tasks.Count) throw new ArgumentException("export: the tasks must be distinct and at least one");
        bool fixedSize = !o.Dynamic;
        if (fixedSize && (o.Height <= 0 || o.Width <= 0))
            throw new ArgumentException($"export: a fixed-size model needs a positive height and width (got {o.Height}x{o.Width}); or export with --dynamic");

        var g = new OnnxGraph();
        g.Graph.Name = "ccr_multitask";
        string x = g.Fresh("image");
        long?[] inDims = fixedSize ? [1, 3, o.Height, o.Width] : [null, 3, null, null];
        g.Graph.Input.Add(TensorInfo(x, "RGB image, float32 NCHW, normalised (x - mean) / std with the metadata's ccr.mean / ccr.std, x in [0, 1]",
                                     inDims, ["batch", "", "height", "width"]));
        var b = new Builder(g);

        // zero padding to multiples of 32 at the bottom and right: pads = [0, 0, 0, 0, 0, 0, (32 - H % 32) % 32, ...]
        string hw = g.SpatialSize(x);
        string c32 = g.Int64(32, 32);
        string extra = g.Node("Mod", "pad_hw", [g.Node("Sub", "pad_hw_raw", [c32, g.Node("Mod", "hw_mod", [hw, c32])]), c32]);
        string pads = g.Node("Concat", "pads", [g.Int64(0, 0, 0, 0, 0, 0), extra], Attr("axis", 0L));
        string xp = g.Node("Pad", "image_padded", [x, pads], Attr("mode", "constant"));

        IReadOnlyList<string> levels = b.HrNet(model.Backbone, xp);
        if (model.Neck != null) levels = b.Fpn(model.Neck, levels);
        foreach (var t in tasks)
        {
            var dec = model.Decoders[t];
            string feat = dec switch
            {
                SemanticFpnDecoder s => b.SemanticFpn(s, levels, t),
                HrNetHead h => b.HrHead(h, levels, t),
                _ => throw new NotSupportedException($"export: decoder {dec.GetType().Name}"),
            };
            string logits = b.Conv(dec.Classifier, null, feat, $"{t}.cls");
            string up = b.Resize(logits, xp, bilinear: true, $"{t}.up");
            string name = OutputName(t);
            g.NodeMulti("Slice", name + "_crop", [up, g.Int64(0, 0), hw, g.Int64(2, 3)], [name]);
            int k = model.Tasks.First(s => s.Name == t).Channels;
            g.Graph.Output.Add(TensorInfo(name, OutputDoc(t), fixedSize ? [1, k, o.Height, o.Width] : [null, k, null, null],
                                          ["batch", "", "height", "width"]));
        }

        var m = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = Producer,
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            Domain = "ccr",
            ModelVersion = 1,
            DocString = "Ccr multi-task dense prediction network (Contrastive Multi-Task Dense Prediction, AAAI 2023) without its " +
                        "training-only regulariser: input 'image' (N, 3, H, W) normalised RGB; one output per task at the input resolution.",
            Graph = g.Graph,
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        var meta = new Dictionary<string, string>
        {
            ["ccr.tasks"] = string.Join(",", tasks),
            ["ccr.outputs"] = string.Join(",", tasks.Select(OutputName)),
            ["ccr.mean"] = string.Join(",", Augment.Mean.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))),
            ["ccr.std"] = string.Join(",", Augment.Std.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))),
            ["ccr.backbone"] = model.Backbone.Config.Name,
            ["ccr.decoder"] = model.Kind.ToString(),
        };
        if (metadata != null) foreach (var (k, v) in metadata) meta[k] = v;
        foreach (var (k, v) in meta) m.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return m;
    }

    static string OutputDoc(string task) => task switch
    {
        "semseg" or "human_parts" => "class logits (N, K, H, W); argmax over K = class",
        "depth" => "depth in metres (N, 1, H, W); eval clamps negative values at 0",
        "normals" => "surface normal (N, 3, H, W), not normalised; divide by its length",
        "edge" => "edge logit (N, 1, H, W); sigmoid = edge probability",
        "sal" => "saliency logits (N, 2, H, W); softmax channel 1 = saliency probability",
        _ => "task output (N, K, H, W)",
    };

    public static void Save(ModelProto m, string path)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp";
        using (var f = File.Create(tmp)) m.WriteTo(f);
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>Emits the modules' nodes; value names follow the parameter names of the model.</summary>
    sealed class Builder(OnnxGraph g)
    {
        /// <summary>Conv (+ batch norm folded into its weight and bias), no activation.</summary>
        public string Conv(Conv2d conv, BatchNorm2d? bn, string x, string name)
        {
            var w = conv.Weight.ToArray();
            var bias = conv.Bias?.ToArray();
            int co = conv.OutChannels, per = w.Length / co;
            float[] wf = w, bf = bias ?? new float[co];
            if (bn != null)
            {
                // y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta, folded in float64
                var gamma = bn.Weight.ToArray(); var beta = bn.Bias.ToArray();
                var mean = bn.RunningMean.ToArray(); var v = bn.RunningVar.ToArray();
                wf = new float[w.Length]; bf = new float[co];
                for (int c = 0; c < co; c++)
                {
                    double s = gamma[c] / Math.Sqrt((double)v[c] + bn.Eps);
                    for (int i = 0; i < per; i++) wf[c * per + i] = (float)(w[c * per + i] * s);
                    bf[c] = (float)(((bias?[c] ?? 0.0) - mean[c]) * s + beta[c]);
                }
            }
            string wn = g.Initializer(name + ".weight", wf, co, conv.InChannels, conv.KernelSize, conv.KernelSize);
            string bn_ = g.Initializer(name + ".bias", bf, co);
            long k = conv.KernelSize, p = conv.Padding, s_ = conv.Stride, d = conv.Dilation;
            return g.Node("Conv", name, [x, wn, bn_], Attr("kernel_shape", k, k), Attr("pads", p, p, p, p),
                          Attr("strides", s_, s_), Attr("dilations", d, d), Attr("group", 1L));
        }

        public string Relu(string x) => g.Node("Relu", x + "_relu", [x]);
        string Add(string a, string b, string name) => g.Node("Add", name, [a, b]);

        /// <summary>Resize x (N, C, h, w) to the spatial size of <paramref name="like"/>.</summary>
        public string Resize(string x, string like, bool bilinear, string name)
        {
            string sizes = g.Node("Concat", name + "_sizes", [g.Node("Slice", name + "_nc", [g.Shape(x), g.Int64(0), g.Int64(2)]), g.SpatialSize(like)], Attr("axis", 0L));
            var attrs = bilinear
                ? new[] { Attr("mode", "linear"), Attr("coordinate_transformation_mode", "pytorch_half_pixel") }
                : new[] { Attr("mode", "nearest"), Attr("coordinate_transformation_mode", "asymmetric"), Attr("nearest_mode", "floor") };
            return g.Node("Resize", name, [x, "", "", sizes], attrs);
        }

        /// <summary>A Sequential as the model runs it: conv followed by batch norm folds; ReLU, Identity,
        /// residual blocks and nested Sequentials in order.</summary>
        public string Seq(Sequential s, string x, string name)
        {
            for (int i = 0; i < s.Count; i++)
            {
                string n = $"{name}.{i}";
                switch (s[i])
                {
                    case Conv2d c when i + 1 < s.Count && s[i + 1] is BatchNorm2d bn: x = Conv(c, bn, x, n); i++; break;
                    case Conv2d c: x = Conv(c, null, x, n); break;
                    case ReLU: x = Relu(x); break;
                    case Identity: break;
                    case Sequential inner: x = Seq(inner, x, n); break;
                    case BasicBlock bb: x = Basic(bb, x, n); break;
                    case Bottleneck bt: x = Bottle(bt, x, n); break;
                    case var l: throw new NotSupportedException($"export: layer {l.GetType().Name} at {n}");
                }
            }
            return x;
        }

        string Shortcut(ResidualBlock r, string x, string name) => r.Downsample == null ? x : Seq(r.Downsample, x, name + ".downsample");

        string Basic(BasicBlock bb, string x, string name)
        {
            var y = Relu(Conv(bb.Conv1, bb.Bn1, x, name + ".conv1"));
            y = Conv(bb.Conv2, bb.Bn2, y, name + ".conv2");
            return Relu(Add(y, Shortcut(bb, x, name), name + ".add"));
        }

        string Bottle(Bottleneck bt, string x, string name)
        {
            var y = Relu(Conv(bt.Conv1, bt.Bn1, x, name + ".conv1"));
            y = Relu(Conv(bt.Conv2, bt.Bn2, y, name + ".conv2"));
            y = Conv(bt.Conv3, bt.Bn3, y, name + ".conv3");
            return Relu(Add(y, Shortcut(bt, x, name), name + ".add"));
        }

        string Layer(Layer l, string x, string name) => l switch
        {
            Identity => x,
            Sequential s => Seq(s, x, name),
            _ => throw new NotSupportedException($"export: transition {l.GetType().Name} at {name}"),
        };

        /// <summary>HrNet.Forward: the four stage-4 outputs (strides 4..32).</summary>
        public string[] HrNet(HrNet n, string x)
        {
            var y = Relu(Conv(n.Conv1, n.Bn1, x, "backbone.conv1"));
            y = Relu(Conv(n.Conv2, n.Bn2, y, "backbone.conv2"));
            y = Seq(n.Layer1, y, "backbone.layer1");
            string[] xl = n.Transitions[0].Items.Select((t, i) => Layer(t, y, $"backbone.transition1.{i}")).ToArray();
            for (int s = 0; s < 3; s++)
            {
                if (s > 0)
                {
                    var prev = xl;
                    xl = n.Transitions[s].Items.Select((t, i) => t is Identity ? prev[i] : Layer(t, prev[^1], $"backbone.transition{s + 1}.{i}")).ToArray();
                }
                for (int m = 0; m < n.Stages[s].Count; m++) xl = Module(n.Stages[s][m], xl, $"backbone.stage{s + 2}.{m}");
            }
            return xl;
        }

        string[] Module(HrModule m, string[] xs, string name)
        {
            var b = xs.Select((x, i) => Seq(m.Branches[i], x, $"{name}.branches.{i}")).ToArray();
            if (m.FuseLayers == null) return b;
            var outs = new string[m.NumBranches];
            for (int i = 0; i < m.NumBranches; i++)
            {
                string? y = null;
                for (int j = 0; j < m.NumBranches; j++)
                {
                    string fn = $"{name}.fuse_layers.{i}.{j}";
                    string f = m.FuseLayers[i][j] switch
                    {
                        FuseUp up => Resize(Conv(up.Conv, up.Bn, b[j], fn), b[i], bilinear: false, fn + ".up"),
                        Identity => b[j],
                        Sequential s => Seq(s, b[j], fn),
                        var other => throw new NotSupportedException($"export: fuse module {other.GetType().Name} at {fn}"),
                    };
                    y = y == null ? f : Add(y, f, $"{name}.fuse{i}.add{j}");
                }
                outs[i] = Relu(y!);
            }
            return outs;
        }

        public string[] Fpn(Fpn f, IReadOnlyList<string> xs)
        {
            int n = f.Lateral.Count;
            var lat = new string[n];
            for (int i = 0; i < n; i++) lat[i] = Conv(f.Lateral[i], null, xs[i], $"fpn.lateral_convs.{i}");
            for (int i = n - 2; i >= 0; i--)
                lat[i] = Add(lat[i], Resize(lat[i + 1], lat[i], bilinear: false, $"fpn.top_down{i}"), $"fpn.merge{i}");
            return lat.Select((t, i) => Conv(f.Output[i], null, t, $"fpn.fpn_convs.{i}")).ToArray();
        }

        public string SemanticFpn(SemanticFpnDecoder d, IReadOnlyList<string> levels, string task)
        {
            string? sum = null;
            for (int i = 0; i < d.ScaleHeads.Count; i++)
            {
                var s = d.ScaleHeads[i];
                string y = levels[i];
                for (int k = 0; k < s.Count / 3; k++)
                {
                    string n = $"decoders.{task}.scale_heads.{i}.{3 * k}";
                    y = Relu(Conv((Conv2d)s[3 * k], (BatchNorm2d)s[3 * k + 1], y, n));
                    if (i > 0) y = Resize(y, levels[i - k - 1], bilinear: true, n + ".up");
                }
                sum = sum == null ? y : Add(sum, y, $"decoders.{task}.sum{i}");
            }
            return sum!;
        }

        public string HrHead(HrNetHead h, IReadOnlyList<string> levels, string task)
        {
            var up = levels.Select((t, i) => i == 0 ? t : Resize(t, levels[0], bilinear: true, $"decoders.{task}.up{i}")).ToArray();
            string cat = g.Node("Concat", $"decoders.{task}.concat", up, Attr("axis", 1L));
            return Relu(Conv(h.Conv, h.Bn, cat, $"decoders.{task}.0"));
        }
    }
}
