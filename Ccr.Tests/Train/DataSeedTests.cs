using Ccr.Training;
using Ccr.Training.Config;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>data.seed fixes the generated data set while seed varies the training; configs written
/// before the key keep generating their data from seed.</summary>
public class DataSeedTests
{
    static TrainConfig FromYaml(string yaml, params string[] sets)
    {
        string path = Path.Combine(Path.GetTempPath(), "ccr-dataseed-" + Guid.NewGuid().ToString("N") + ".yaml");
        File.WriteAllText(path, yaml);
        try { return ConfigLoader.Load(path, sets); } finally { File.Delete(path); }
    }

    [Fact]
    public void OldConfigsTakeTheDataSeedFromSeed()
    {
        var c = FromYaml("seed: 7\ndata:\n  dataset: synth\n");
        Assert.Equal(7, c.Seed);
        Assert.Equal(7, c.Data.Seed);
        Assert.Equal(5, FromYaml("seed: 7\n", "seed=5").Data.Seed); // --seed on an old config: data follows, as before
    }

    [Fact]
    public void DataSeedStaysWhenTheTrainingSeedChanges()
    {
        var c = FromYaml("seed: 7\ndata:\n  seed: 3\n", "seed=11");
        Assert.Equal(11, c.Seed);
        Assert.Equal(3, c.Data.Seed);
        var again = FromYaml(ConfigLoader.ToYaml(c)); // the run folder's config.yaml reads back the same
        Assert.Equal(11, again.Seed);
        Assert.Equal(3, again.Data.Seed);
        foreach (var preset in new[] { "synth-cpu", "synth-ablate" })
            Assert.Equal(0, ConfigLoader.Load(preset, ["seed=4"]).Data.Seed);
    }

    [Theory]
    [InlineData("synth-cpu")]
    [InlineData("synth-gpu")]
    [InlineData("synth-ablate")]
    public void SynthPresetsLoadForEveryAblationRow(string preset)
    {
        // ablate trains single-task rows of each task from the same preset
        foreach (var t in new[] { "semseg", "depth", "normals" })
            Assert.Equal([t], ConfigLoader.Load(preset, ["ccr.enabled=false", $"tasks=[{t}]"]).Tasks);
    }

    [Fact]
    public void BadDataSeedNamesTheKey()
    {
        var e = Assert.Throws<ConfigException>(() => FromYaml("seed: 1\n", "data.seed=abc"));
        Assert.Contains("data.seed", e.Message);
    }
}
