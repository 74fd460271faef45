using Ccr.Kernels.Ops;
using Ccr.Training;
using Ccr.Kernels;
using Ccr.Train.Cli;
using Ccr.Train.Commands;
using Ccr.Training.Config;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>train.precision / --precision reach the kernels' setting; fp32 is the default.</summary>
public class PrecisionOptionTests
{
    static TrainConfig Load(params string[] argv) =>
        TrainCommand.LoadConfig(Args.Parse("train", argv, TrainCommand.Options), "synth-cpu");

    [Fact]
    public void DefaultIsFp32AndBothSpellingsSelectTf32()
    {
        Assert.Equal(MathPrecision.Fp32, Load().Train.Precision);
        Assert.Equal(MathPrecision.Tf32, Load("--precision", "tf32").Train.Precision);
        Assert.Equal(MathPrecision.Tf32, Load("--set", "train.precision=TF32").Train.Precision);
        // --precision is sugar for --set train.precision: both give the same record
        Assert.Equal(Load("--set", "train.precision=tf32"), Load("--precision", "tf32"));
        // the resolved config carries it, so a resumed run keeps its arithmetic
        Assert.Contains("precision: tf32", ConfigLoader.ToYaml(Load("--precision", "tf32")));
    }

    [Fact]
    public void UnknownPrecisionIsAUsageErrorNamingTheKey()
    {
        var e = Assert.Throws<ConfigException>(() => Load("--precision", "fp16"));
        Assert.Contains("train.precision = fp16: must be one of fp32, tf32", e.Message);
    }
}
