using Ccr.Train.Cli;
using Ccr.Train.Commands;
using Xunit;

namespace Ccr.Tests.Train;

/// <summary>Every command's --help documents every option it accepts.</summary>
public class CliTests
{
    static string Capture(Func<int> run)
    {
        var old = Console.Out;
        var sw = new StringWriter();
        Console.SetOut(sw);
        try { Assert.Equal(0, run()); }
        finally { Console.SetOut(old); }
        return sw.ToString();
    }

    public static TheoryData<string> Commands => new() { "train", "eval", "infer", "ablate", "demo" };

    [Theory]
    [MemberData(nameof(Commands))]
    public void HelpListsEveryDeclaredOption(string command)
    {
        var (options, run) = command switch
        {
            "train" => (TrainCommand.Options, (Func<string[], int>)TrainCommand.Run),
            "eval" => (EvalCommand.Options, EvalCommand.Run),
            "infer" => (InferCommand.Options, InferCommand.Run),
            "ablate" => (AblateCommand.Options, AblateCommand.Run),
            _ => (DemoCommand.Options, DemoCommand.Run),
        };
        string help = Capture(() => run(["--help"]));
        foreach (var o in options)
        {
            Assert.Contains("--" + o.Name, help);
            Assert.Contains(o.Help, help);
        }
        Assert.Contains("--help", help);
    }

    [Fact]
    public void ScoreAndModelHelpNameTheirOptions()
    {
        string score = Capture(() => ScoreCommand.Run(["--help"]));
        foreach (var o in new[] { "--data", "--predictions", "--tasks", "--baseline", "--split", "--out", "--skip-bad" })
            Assert.Contains(o, score);
        string model = Capture(() => ModelCommand.Run(["--help"]));
        foreach (var o in new[] { "--name", "--size", "--decoder", "--tasks" })
            Assert.Contains(o, model);
    }

    [Fact]
    public void UnknownOptionsAreRejectedWithTheValidOnes()
    {
        var e = Assert.Throws<UsageException>(() => Args.Parse("train", ["--lr", "3"], TrainCommand.Options));
        Assert.Contains("unknown option --lr", e.Message);
        Assert.Contains("--config", e.Message);
        var e2 = Assert.Throws<UsageException>(() => Args.Parse("train", ["--out"], TrainCommand.Options));
        Assert.Contains("--out needs a value", e2.Message);
    }
}
