using Ccr.Kernels;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Data;
using Ccr.Training;
using Ccr.Training.Config;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>The config as typed, immutable records: presets and old run folders load, config.yaml
/// round-trips, --set and a file give the same record, and every problem is listed with its key.</summary>
public class ConfigRecordTests
{
    static TrainConfig FromYaml(string yaml, params string[] sets) => ConfigLoader.FromText(yaml, "test.yaml", sets);

    public static TheoryData<string> Presets() => new(ConfigLoader.Presets);

    [Theory]
    [MemberData(nameof(Presets))]
    public void EveryPresetLoadsAndRoundTripsThroughConfigYaml(string preset)
    {
        var c = ConfigLoader.Load(preset, []);
        string yaml = ConfigLoader.ToYaml(c);
        var back = FromYaml(yaml);
        Assert.Equal(c, back);
        Assert.Equal(yaml, ConfigLoader.ToYaml(back));
        Assert.Equal(1f, c.Ccr.RampEpochs); // every preset ramps lambda over one epoch
    }

    [Fact]
    public void AConfigYamlWrittenBeforeTheRecordsLoadsAndIsWrittenBackTheSame()
    {
        string old = File.ReadAllText(TestData.Fixture("config", "run-before-records.yaml"));
        var c = FromYaml(old);
        Assert.Equal(MathPrecision.Fp32, c.Train.Precision);
        Assert.Equal((BackboneKind.HrnetTiny, HeadKind.HrNet), (c.Model.Backbone, c.Model.Head));
        Assert.Equal((ProjectorSharing.SourceShared, PairSelection.RandomSource, 16, 32), (c.Ccr.Sharing, c.Ccr.Pairs, c.Ccr.NumNegatives, c.Ccr.ProjectionDim));
        Assert.Equal(old, ConfigLoader.ToYaml(c));
    }

    [Fact]
    public void SetAndAFileGiveTheSameRecord()
    {
        var fromFile = FromYaml("tasks: [semseg, depth]\ntrain:\n  lr: 0.01\n  precision: tf32\n  schedule: constant\n" +
                                "ccr:\n  sharing: both\n  negatives: 8\n  ramp_epochs: 0.3\nloss_weights:\n  depth: 3\n");
        var fromSets = ConfigLoader.Load(null, ["tasks=[semseg,depth]", "train.lr=0.01", "train.precision=tf32", "train.schedule=constant",
                                               "ccr.sharing=both", "ccr.negatives=8", "ccr.ramp_epochs=0.3", "loss_weights.depth=3"]);
        Assert.Equal(fromFile, fromSets);
        Assert.Equal((ProjectorSharing.BothShared, 8, 0.3f), (fromSets.Ccr.Sharing, fromSets.Ccr.NumNegatives, fromSets.Ccr.RampEpochs));
        Assert.Equal(10f, fromSets.LossWeights["normals"]); // the weights not given keep their defaults
        // a preset with --set is the preset's text with the key edited
        var preset = ConfigLoader.Preset("synth-cpu")!;
        Assert.Equal(FromYaml(preset.Replace("sampling: hard", "sampling: basic")), ConfigLoader.Load("synth-cpu", ["ccr.sampling=basic"]));
    }

    /// <summary>TrainConfig spells out its equality (its collections): a key that the equality
    /// missed would let a changed config compare equal. A new top-level key fails here until listed.</summary>
    [Fact]
    public void ChangingAnyTopLevelKeyMakesADifferentRecord()
    {
        var changes = new Dictionary<string, string>
        {
            ["name"] = "name=other", ["seed"] = "seed=5", ["device"] = "device=cpu", ["data"] = "data.workers=3",
            ["tasks"] = "tasks=[depth]", ["model"] = "model.head_channels=3", ["train"] = "train.lr=0.5",
            ["loss_weights"] = "loss_weights.semseg=3", ["ccr"] = "ccr.margin=0.5", ["eval"] = "eval.batch_size=3",
            ["distributed"] = "distributed.bucket_mb=3",
        };
        Assert.Equal(ConfigSchema.Fields(typeof(TrainConfig)).Select(f => f.Key).Order(), changes.Keys.Order());
        var baseline = ConfigLoader.Load(null, ["eval.metric=depth.rmse"]);
        Assert.Equal(baseline, ConfigLoader.Load(null, ["eval.metric=depth.rmse"]));
        foreach (var (key, set) in changes)
            Assert.False(baseline.Equals(ConfigLoader.Load(null, ["eval.metric=depth.rmse", set])), key);
    }

    [Fact]
    public void AConfigThatOmitsACcrKeyGetsTheDefaultRunsHaveAlwaysUsed()
    {
        var c = FromYaml("ccr:\n  margin: 0.3\n");
        Assert.Equal(new CcrConfig { Margin = 0.3f }, c.Ccr);
        Assert.Equal(1f, c.Ccr.RampEpochs);
    }

    [Theory]
    [InlineData("ccr.sharing=sideways", "ccr.sharing = sideways: must be one of source, unshared, target, both, none")]
    [InlineData("ccr.pair_selection=some", "ccr.pair_selection = some: must be one of random, all")]
    [InlineData("model.head=unet", "model.head = unet: must be one of fpn, hrnet")]
    [InlineData("device=tpu", "device = tpu: must be one of auto, cuda, cpu")]
    [InlineData("data.dataset=coco", "data.dataset = coco: must be one of synth, nyud, pascal")]
    [InlineData("train.schedule=cosine", "train.schedule = cosine: must be one of poly, constant")]
    public void AnUnknownChoiceNamesItsKeyAndTheValidValues(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("synth-cpu", [set]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void EveryProblemOfAConfigIsListedInOneError()
    {
        var e = Assert.Throws<ConfigException>(() => FromYaml(
            "tasks: [semseg, depht]\ntrain:\n  epochs: two\n  lr: -0.1\n  learning_rate: 1\nccr:\n  sharing: sideways\n  gamma: 5\n"));
        Assert.DoesNotContain("\n", e.Message);
        foreach (var part in new[] { "test.yaml: ", "unknown task 'depht'", "'train.epochs' expects an integer, got 'two'", "train.lr = -0.1",
                                     "unknown key 'train.learning_rate'", "ccr.sharing = sideways", "ccr.gamma = 5" })
            Assert.Contains(part, e.Message);
    }

    [Fact]
    public void EveryChoiceHasOneYamlWordAndEveryBackboneIsANetwork()
    {
        foreach (var type in new[] { typeof(DeviceChoice), typeof(DatasetKind), typeof(BackboneKind), typeof(HeadKind), typeof(OptimizerKind),
                                     typeof(ScheduleKind), typeof(MathPrecision), typeof(Ccr.Kernels.Contrastive.CcrSampling),
                                     typeof(ProjectorSharing), typeof(PairSelection) })
        {
            var words = Enum.GetValues(type).Cast<Enum>().Select(v => v.ConfigWord()).ToList();
            Assert.Equal(words.Count, words.Distinct().Count());
            Assert.All(Enum.GetValues(type).Cast<Enum>(), v => Assert.Equal(v, ConfigEnums.Parse(type, " " + v.ConfigWord().ToUpperInvariant())));
        }
        foreach (var b in Enum.GetValues<BackboneKind>()) Assert.Equal(b.ConfigWord(), TrainSession.Backbone(b).Name);
    }
}
