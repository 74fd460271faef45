using Ccr.Training.DataParallel;


namespace Ccr.Train.Commands;

/// <summary>
/// How a data-parallel command ends on each rank (the exit-code side of <see cref="Launcher"/>): a
/// failure of one rank becomes one line naming the rank and the reason, then MPI_Abort with the
/// command's exit code, so mpirun stops every other rank at once.
/// </summary>
public static class RankExit
{
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
        if (rc is ExitCodes.Terminated or ExitCodes.Interrupted)
        {
            // stopped by a signal, every rank after the same step and last.ckpt written: once all are
            // here, the job ends with that code (after MPI_Finalize mpirun would report 0, success)
            Console.Out.Flush();
            Console.Error.Flush();
            dist.Comm.Barrier("the end of a stopped run", TimeSpan.FromMinutes(10));
            dist.Abort(rc);
            return rc;
        }
        if (rc != 0) { Fail(dist, $"the command ended with exit code {rc}", rc); return rc; }
        dist.Comm.Barrier("the end of the run", TimeSpan.FromHours(1)); // rank 0 may still be writing plots
        Launcher.ReportWaiting(dist);
        dist.Dispose();
        return 0;
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
    /// command (Commands/Entry.cs, docs/guide/ERRORS.md); a bug's reason carries its trace after the first line.</summary>
    public static (string Reason, int Code) Describe(Exception e)
    {
        var (code, message) = Entry.Describe(e, "train");
        return (message, code);
    }
}
