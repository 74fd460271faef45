using System.Text.Json;
using Ccr.Bench.Report;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Modules;
using Ccr.Tests.Common;
using Ccr.Training.Config;
using Ccr.Training.MultiTask;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>
/// The GPU report sets our training step beside tools/torch_step_baseline.py's; the two sides must
/// build the same network. The script's FPN, Semantic FPN decoders and CCR projectors are written
/// in PyTorch from the papers (not from our code); Fixtures/models/paper_model_params.json holds
/// their parameter counts and shapes (made by <c>tools/torch_step_baseline.py --count-params
/// --backbone-listing Ccr.Tests/Fixtures/models/hrnet_w18_small_v2_state_dict.txt</c>, the backbone
/// counted from timm's state-dict listing). Ours must match part by part, shape for shape.
/// </summary>
public class PaperModelParityTests
{
    static JsonElement Golden()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", "paper_model_params.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    static List<string> Shapes(Module m) =>
        m.Parameters().Select(p => string.Join(",", p.Shape)).Order(StringComparer.Ordinal).ToList();

    static List<string> Shapes(JsonElement part) =>
        part.GetProperty("shapes").EnumerateArray()
            .Select(s => string.Join(",", s.EnumerateArray().Select(v => v.GetInt32()))).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public void PaperModel_MatchesThePyTorchDefinition_PartByPart()
    {
        var g = Golden();
        var cfg = ConfigLoader.Load("nyud-hrnet18", ["model.pretrained=none"]);
        var rng = new Rng(0);
        var specs = new[] { new TaskSpec("semseg", 40), new TaskSpec("depth", 1), new TaskSpec("normals", 3) };
        var model = new MultiTaskModel(Devices.Cpu, rng, TrainSession.Backbone(cfg.Model.Backbone), DecoderKind.SemanticFpn, specs,
                                       cfg.Model.FpnChannels, cfg.Model.HeadChannels);
        var ccr = new CcrLoss(Devices.Cpu, rng, cfg.Ccr,
                              specs.Select(s => (s.Name, model.Decoders[s.Name].FeatureChannels)).ToList());
        try
        {
            Assert.Equal(g.GetProperty("backbone").GetProperty("parameters").GetInt64(), model.Backbone.ParameterCount());
            Assert.Equal(g.GetProperty("fpn").GetProperty("parameters").GetInt64(), model.Neck!.ParameterCount());
            Assert.Equal(Shapes(g.GetProperty("fpn")), Shapes(model.Neck));
            foreach (var s in specs)
            {
                var part = g.GetProperty("decoders").GetProperty(s.Name);
                Assert.Equal(part.GetProperty("parameters").GetInt64(), model.Decoders[s.Name].ParameterCount());
                Assert.Equal(Shapes(part), Shapes(model.Decoders[s.Name]));
            }
            var proj = g.GetProperty("projector");
            Assert.Equal(proj.GetProperty("count").GetInt32(), ccr.ProjectorCount);
            foreach (var s in specs)
                Assert.Equal(Shapes(proj), Shapes(ccr.ProjectorFor(s.Name, specs.First(o => o.Name != s.Name).Name)));
            Assert.Equal(g.GetProperty("model_parameters").GetInt64(), model.ParameterCount());
            Assert.Equal(g.GetProperty("total_parameters_with_ccr").GetInt64(), model.ParameterCount() + ccr.ParameterCount());
        }
        finally
        {
            model.DisposeTensors();
            ccr.DisposeTensors();
        }
    }

    [Fact]
    public void ReportCounts_AreTheGoldenTotals()
    {
        // what `Ccr.Bench report` writes as model.parameters / model.parameters_ccr
        var g = Golden();
        var (m, withCcr) = ReportCommand.ParameterCounts();
        Assert.Equal(g.GetProperty("model_parameters").GetInt64(), m);
        Assert.Equal(g.GetProperty("total_parameters_with_ccr").GetInt64(), withCcr);
    }
}
