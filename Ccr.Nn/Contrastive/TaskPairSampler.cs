namespace Ccr.Nn.Contrastive;

/// <summary>
/// Contrastive task-pair selection: each step, for every target task, one source task drawn
/// uniformly from the other tasks (the paper's CTS), or every ordered pair. Sources are restricted
/// to tasks that have labels this step; a target without any source gets no pair.
/// </summary>
public sealed class TaskPairSampler(IReadOnlyList<string> tasks, PairSelection mode)
{
    public IReadOnlyList<string> Tasks { get; } = tasks.ToArray();
    public PairSelection Mode { get; } = mode;

    /// <summary>The (target, source) pairs of one step, in task order.</summary>
    public List<(string Target, string Source)> Next(Rng rng, Func<string, bool>? hasLabels = null)
    {
        var pairs = new List<(string, string)>();
        foreach (var t in Tasks)
        {
            var sources = Tasks.Where(s => s != t && (hasLabels == null || hasLabels(s))).ToList();
            if (sources.Count == 0) continue;
            if (Mode == PairSelection.AllPairs) pairs.AddRange(sources.Select(s => (t, s)));
            else pairs.Add((t, sources[rng.NextInt(sources.Count)]));
        }
        return pairs;
    }
}
