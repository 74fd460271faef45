using Ccr.Training;
using Ccr.Train.Commands;
using Ccr.Nn;
using Ccr.Nn.Distributed;
using Ccr.Train.Cli;
using Ccr.Training.DataParallel;
using Xunit;

namespace Ccr.Tests.Distributed;

/// <summary>How a process finds out whether it is one rank of an MPI job, and the messages when
/// that cannot work. The environment variables are set in this process only (tests run one at a time).</summary>
public class LauncherTests
{
    static T WithEnv<T>(string name, string? value, Func<T> f)
    {
        var old = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
        try { return f(); }
        finally { Environment.SetEnvironmentVariable(name, old); }
    }

    [Fact]
    public void WithoutMpirunItIsOneProcess()
    {
        var d = WithEnv("OMPI_COMM_WORLD_SIZE", null, () => Launcher.Start(300));
        Assert.Same(DistContext.Single, d);
        Assert.Equal(1, d.Size);
        Assert.True(d.IsPrimary);
        Assert.Same(DistContext.Single, WithEnv("OMPI_COMM_WORLD_SIZE", "1", () => Launcher.Start(300))); // mpirun -np 1
        Assert.Equal(7, RankExit.Run(d, () => 7)); // one process: the body's own code, no MPI
    }

    [Fact]
    public void MissingOpenMpiNamesThePackagesToInstall()
    {
        var e = Assert.Throws<ConfigException>(() => WithEnv("OMPI_COMM_WORLD_SIZE", "2",
            () => Launcher.Start(300, ["libmpi-that-does-not-exist.so.40"])));
        Assert.Contains("libmpi-that-does-not-exist.so.40", e.Message);
        Assert.Contains("apt-get install openmpi-bin libopenmpi-dev", e.Message);
        Assert.Contains("mpirun", e.Message);
        Assert.DoesNotContain("\n", e.Message);

        var other = Assert.Throws<ConfigException>(() => WithEnv("OMPI_COMM_WORLD_SIZE", null,
            () => WithEnv("PMI_SIZE", "2", () => Launcher.Start(300))));
        Assert.Contains("not Open MPI", other.Message);
        Assert.Contains("openmpi-bin", other.Message);
    }

    [Fact]
    public void FailuresBecomeOneLineWithTheExitCodesOfTheCommands()
    {
        Assert.Equal((2, "bad key"), Swap(RankExit.Describe(new UsageException("bad key"))));
        Assert.Equal(3, RankExit.Describe(new OutOfMemoryException("pool")).Code);
        Assert.StartsWith("out of memory", RankExit.Describe(new OutOfMemoryException("pool")).Reason);
        Assert.Equal(4, RankExit.Describe(new NonFiniteException("loss is NaN", "depth")).Code);
        // the codes of every command (docs/guide/ERRORS.md): 7 for a failed collective, 70 (with the trace) for a bug
        Assert.Equal(7, RankExit.Describe(new DistributedException("rank 0: timed out")).Code);
        Assert.Equal(70, RankExit.Describe(new InvalidOperationException("boom")).Code);
        Assert.Contains("InvalidOperationException: boom", RankExit.Describe(new InvalidOperationException("boom")).Reason);
        static (int, string) Swap((string R, int C) t) => (t.C, t.R);
    }
}
