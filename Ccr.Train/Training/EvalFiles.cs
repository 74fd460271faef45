using Ccr.Train.Commands;

namespace Ccr.Train.Training;

/// <summary>Reading eval.json files back: ablation tables and Δm against a single-task baseline.</summary>
public static class EvalFiles
{
    /// <summary>The per-task metric blocks of an eval.json (delta_m and other scalars are skipped).</summary>
    public static Dictionary<string, Dictionary<string, double>> Read(string path) => ScoreCommand.ReadResults(path);

    /// <summary>Δm (percent) of <paramref name="metrics"/> against the baseline eval.json at <paramref name="baselinePath"/>.</summary>
    public static double DeltaM(Dictionary<string, Dictionary<string, double>> metrics, string baselinePath) =>
        Metrics.DeltaM.Compute(metrics, Read(baselinePath));
}
