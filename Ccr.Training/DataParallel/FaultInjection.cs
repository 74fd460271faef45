namespace Ccr.Training.DataParallel;

/// <summary>What an injected fault does to its rank.</summary>
public enum FaultKind { Kill, Throw, Oom, Hang }

/// <summary>
/// Test hook: <c>CCR_FAULT=RANK:STEP:KIND</c> makes rank RANK fail before step STEP, with KIND kill
/// (SIGKILL to itself), throw, oom or hang, so that the tests can check that every other rank stops
/// within the time limit. Read once, when a distributed session is built
/// (<see cref="DistributedTraining.Attach"/>): a malformed value stops every rank there. Ignored by
/// a single process.
/// </summary>
public sealed record FaultInjection(int Rank, long Step, FaultKind Kind)
{
    public const string Variable = "CCR_FAULT";

    /// <summary>The fault <c>CCR_FAULT</c> asks for, or null when it is unset or empty.</summary>
    public static FaultInjection? FromEnvironment() => Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>RANK:STEP:KIND as a fault; null for null or empty; a <see cref="ConfigException"/>
    /// naming the expected form otherwise.</summary>
    public static FaultInjection? Parse(string? spec)
    {
        if (string.IsNullOrEmpty(spec)) return null;
        var f = spec.Split(':');
        if (f.Length != 3 || !int.TryParse(f[0], out int rank) || !long.TryParse(f[1], out long step))
            throw new ConfigException($"CCR_FAULT must be RANK:STEP:KIND (kill, throw, oom or hang), got '{spec}'");
        var kind = f[2] switch
        {
            "kill" => FaultKind.Kill,
            "throw" => FaultKind.Throw,
            "oom" => FaultKind.Oom,
            "hang" => FaultKind.Hang,
            _ => throw new ConfigException($"CCR_FAULT kind must be kill, throw, oom or hang, got '{f[2]}'"),
        };
        return new FaultInjection(rank, step, kind);
    }

    /// <summary>Fails as asked when this is rank <see cref="Rank"/> before step <see cref="Step"/>.</summary>
    public void Strike(int rank, long step)
    {
        if (rank != Rank || step != Step) return;
        switch (Kind)
        {
            case FaultKind.Kill: System.Diagnostics.Process.GetCurrentProcess().Kill(); Thread.Sleep(Timeout.Infinite); break;
            case FaultKind.Throw: throw new InvalidOperationException($"injected fault at step {step} (CCR_FAULT)");
            case FaultKind.Oom: throw new OutOfMemoryException($"injected out-of-memory at step {step} (CCR_FAULT)");
            case FaultKind.Hang: Thread.Sleep(Timeout.Infinite); break;
        }
    }
}
