using Ccr.Nn.Models;
using Ccr.Nn.Modules;

namespace Ccr.Training.MultiTask;

/// <summary>One row of a model summary: a stage's per-image output shapes and the multiply-adds of
/// the layers run since the previous row.</summary>
public sealed record SummaryRow(string Stage, Chw[] Shapes, long Macs);

/// <summary>
/// Per-stage output shapes, parameter count and forward cost, from a shape-only pass over the
/// module tree (no tensor is computed, so it works for any input size instantly). Counts
/// convolution multiply-adds (MACs); GFLOP is reported as 2 x GMAC.
/// </summary>
public static class ModelSummary
{
    public static List<SummaryRow> Rows(HrNet backbone, int h, int w)
    {
        var rows = new List<SummaryRow>();
        var macs = new MacCounter();
        long last = 0;
        backbone.OutShapes(new Chw(3, h, w), macs, (name, shapes) =>
        {
            rows.Add(new SummaryRow(name, shapes, macs.Macs - last));
            last = macs.Macs;
        });
        return rows;
    }

    public static List<SummaryRow> Rows(MultiTaskModel model, int h, int w)
    {
        var rows = Rows(model.Backbone, h, w);
        var macs = new MacCounter();
        IReadOnlyList<Chw> levels = rows[^1].Shapes;
        if (model.Neck != null)
        {
            levels = model.Neck.OutShapes(levels, macs);
            rows.Add(new SummaryRow("fpn", levels.ToArray(), macs.Macs));
        }
        foreach (var t in model.Tasks)
        {
            var m = new MacCounter();
            var dec = model.Decoders[t.Name];
            var feat = dec.FeatureShape(levels, m);
            var logits = Shapes.Of(dec.Classifier, feat, m);
            rows.Add(new SummaryRow($"decoder:{t.Name}", [feat, new Chw(logits.C, h, w)], m.Macs));
        }
        return rows;
    }

    public static void Print(TextWriter o, HrNet backbone, int h, int w) =>
        Print(o, backbone.Config.Name, backbone, Rows(backbone, h, w), h, w);

    public static void Print(TextWriter o, MultiTaskModel model, int h, int w) =>
        Print(o, $"{model.Backbone.Config.Name} + {model.Kind} ({string.Join(", ", model.Tasks.Select(t => $"{t.Name}:{t.Channels}"))})",
              model, Rows(model, h, w), h, w);

    static void Print(TextWriter o, string title, Module m, List<SummaryRow> rows, int h, int w)
    {
        o.WriteLine($"{title}, input (3, {h}, {w})");
        o.WriteLine($"{"stage",-20} {"output shapes (C, H, W)",-60} {"GMAC",10}");
        foreach (var r in rows)
            o.WriteLine($"{r.Stage,-20} {string.Join(" ", r.Shapes.Select(s => s.ToString())),-60} {r.Macs / 1e9,10:F4}");
        long total = rows.Sum(r => r.Macs);
        o.WriteLine($"parameters: {m.ParameterCount():N0}");
        o.WriteLine($"forward per image: {total / 1e9:F4} GMAC = {2 * total / 1e9:F4} GFLOP");
    }
}
