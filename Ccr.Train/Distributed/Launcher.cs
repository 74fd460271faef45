using System.Runtime.InteropServices;
using Ccr.Nn;
using Ccr.Nn.Distributed;
using Ccr.Train.Cli;

namespace Ccr.Train.Distributed;

/// <summary>
/// The glue between mpirun and a command. Open MPI's mpirun gives every process it starts
/// OMPI_COMM_WORLD_SIZE, _RANK and _LOCAL_RANK; without them (or with a size of 1) the command runs
/// as one plain process and MPI is never loaded. <see cref="Run"/> turns any failure of a rank into
/// one line naming the rank and the reason, then MPI_Abort, which makes mpirun stop every other
/// rank at once: no rank is left waiting in a collective for a peer that is gone. A rank killed
/// outright (SIGKILL, the kernel's OOM killer) is reported by mpirun itself ("process rank 1 ...
/// exited on signal 9"), which then stops the others; a rank that hangs is caught by its peers'
/// collective time limit (distributed.timeout_s).
/// </summary>
public static class Launcher
{
    const string SizeVar = "OMPI_COMM_WORLD_SIZE", LocalRankVar = "OMPI_COMM_WORLD_LOCAL_RANK";

    /// <summary>True when this process was started by Open MPI's mpirun with more than one rank.</summary>
    public static bool UnderMpirun => int.TryParse(Environment.GetEnvironmentVariable(SizeVar), out int n) && n > 1;

    /// <summary>The ranks of this run: <see cref="DistContext.Single"/> without mpirun, else Open MPI
    /// initialised with the collective time limit <paramref name="timeoutSeconds"/>. A missing
    /// Open MPI library, or a launcher that is not Open MPI's, is a <see cref="UsageException"/>
    /// naming the packages to install.</summary>
    public static DistContext Start(float timeoutSeconds, IReadOnlyList<string>? libraryNames = null)
    {
        if (!UnderMpirun)
        {
            // MPICH's and Intel MPI's launchers (hydra) set PMI_SIZE; Slurm's srun sets SLURM_NTASKS.
            if (int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out int pmi) && pmi > 1)
                throw new UsageException($"this process was started by an MPI launcher that is not Open MPI's (PMI_SIZE={pmi}). " +
                    "Ccr's data-parallel training uses Open MPI 4.x (libmpi.so.40): apt-get install openmpi-bin libopenmpi-dev, " +
                    "then start it with that package's mpirun");
            return DistContext.Single;
        }
        if (!(timeoutSeconds > 0)) throw new UsageException($"distributed.timeout_s must be > 0, got {timeoutSeconds}");
        MpiRuntime rt;
        try
        {
            rt = MpiRuntime.Init(libraryNames);
        }
        catch (MpiUnavailableException e)
        {
            throw new UsageException($"started by mpirun ({SizeVar}={Environment.GetEnvironmentVariable(SizeVar)}), but {e.Message}");
        }
        rt.Timeout = TimeSpan.FromSeconds(timeoutSeconds);
        var main = rt.Communicator("training");
        var grads = rt.Communicator("gradients");
        int.TryParse(Environment.GetEnvironmentVariable(LocalRankVar), out int local);
        var dist = new DistContext(main, grads, rt, local);
        WatchTermination(dist);
        if (dist.IsPrimary)
            Console.WriteLine($"distributed: {dist.Size} ranks over {rt.LibraryVersion}" +
                              (rt.ThreadMultiple ? "" : " (no MPI_THREAD_MULTIPLE: gradients are reduced after the backward pass)"));
        return dist;
    }

    static PosixSignalRegistration? _sigterm;

    /// <summary>mpirun stops the surviving ranks with SIGTERM when one fails: say so, naming this rank.</summary>
    static void WatchTermination(DistContext dist)
    {
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            Console.Error.WriteLine($"rank {dist.Rank} of {dist.Size}: terminated by mpirun (SIGTERM): another rank failed " +
                                    "or the job was cancelled; see mpirun's message for which");
            Console.Error.Flush();
        });
    }

    /// <summary>Runs a command's body on this rank. One process: just the body. Several ranks: a
    /// failure (an exception or a non-zero exit code) prints "rank R of N failed: REASON" and
    /// aborts the job with the command's exit code; success finalises MPI.</summary>
    public static int Run(DistContext dist, Func<int> body)
    {
        if (!dist.IsDistributed) return body();
        int rc;
        try
        {
            rc = body();
        }
        catch (Exception e)
        {
            var (reason, code) = Describe(e);
            Fail(dist, reason, code);
            return code;
        }
        if (rc != 0) { Fail(dist, $"the command ended with exit code {rc}", rc); return rc; }
        dist.Comm.Barrier("the end of the run", TimeSpan.FromHours(1)); // rank 0 may still be writing plots
        ReportWaiting(dist);
        dist.Dispose();
        return 0;
    }

    /// <summary>One line per rank (printed by rank 0): collectives and the time spent in them.</summary>
    static void ReportWaiting(DistContext dist)
    {
        if (dist.Comm is not MpiCommunicator main || dist.GradComm is not MpiCommunicator grads) return;
        var v = new double[4 * dist.Size];
        v[4 * dist.Rank] = main.Collectives;
        v[4 * dist.Rank + 1] = main.WaitTime.TotalSeconds;
        v[4 * dist.Rank + 2] = grads.Collectives;
        v[4 * dist.Rank + 3] = grads.WaitTime.TotalSeconds;
        dist.Comm.AllReduce(v, ReduceOp.Sum, "collecting the ranks' communication times");
        if (!dist.IsPrimary) return;
        for (int r = 0; r < dist.Size; r++)
            Console.WriteLine($"distributed: rank {r}: {v[4 * r + 2]:0} gradient all-reduces, {v[4 * r + 3]:0.00} s; " +
                              $"{v[4 * r]:0} other collectives, {v[4 * r + 1]:0.00} s (waiting for the slowest rank included)");
    }

    static void Fail(DistContext dist, string reason, int code)
    {
        Console.Out.Flush();
        int nl = reason.IndexOf('\n');
        string first = nl < 0 ? reason : reason[..nl], rest = nl < 0 ? "" : reason[nl..];
        Console.Error.WriteLine($"rank {dist.Rank} of {dist.Size} failed: {first}; stopping all ranks{rest}");
        dist.Abort(code);
    }

    /// <summary>The reason and the exit code of a rank's failure: the codes and messages of every
    /// command (Commands/Entry.cs, docs/ERRORS.md); a bug's reason carries its trace after the first line.</summary>
    public static (string Reason, int Code) Describe(Exception e)
    {
        var (code, message) = Commands.Entry.Describe(e, "train");
        return (message, code);
    }
}
