using System.Runtime.InteropServices;
using Ccr.Nn.Distributed;

namespace Ccr.Training.DataParallel;

/// <summary>
/// The glue between mpirun and a command. Open MPI's mpirun gives every process it starts
/// OMPI_COMM_WORLD_SIZE, _RANK and _LOCAL_RANK; without them (or with a size of 1) the command runs
/// as one plain process and MPI is never loaded. The CLI's RankExit.Run turns any failure of a rank into
/// one line naming the rank and the reason, then MPI_Abort, which makes mpirun stop every other
/// rank at once: no rank is left waiting in a collective for a peer that is gone. A rank killed
/// outright (SIGKILL, the kernel's OOM killer) is reported by mpirun itself ("process rank 1 ...
/// exited on signal 9"), which then stops the others; a rank that hangs is caught by its peers'
/// collective time limit (distributed.timeout_s).
/// </summary>
public static class Launcher
{
    const string SizeVar = "OMPI_COMM_WORLD_SIZE";

    /// <summary>How a launcher described this process's place in the job.</summary>
    public sealed record Ranks(string Launcher, string SizeVariable, int Size, int Rank, int LocalRank, int LocalSize);

    /// <summary>
    /// The ranks announced by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE, _RANK, _LOCAL_RANK,
    /// _LOCAL_SIZE) or else by Slurm's srun (SLURM_STEP_NUM_TASKS, SLURM_PROCID, SLURM_LOCALID,
    /// SLURM_STEP_TASKS_PER_NODE: set in every task of a job step, unlike SLURM_NTASKS and
    /// SLURM_PROCID, which a batch script sees too); null for one process (or a job of one).
    /// </summary>
    public static Ranks? Detect(Func<string, string?> env)
    {
        static int Int(string? s) => int.TryParse(s?.Trim(), out int v) ? v : 0;
        static int Leading(string? s) => Int(new string((s ?? "").TakeWhile(char.IsAsciiDigit).ToArray()));
        if (Int(env(SizeVar)) is > 1 and var n)
            return new("mpirun", SizeVar, n, Int(env("OMPI_COMM_WORLD_RANK")), Int(env("OMPI_COMM_WORLD_LOCAL_RANK")),
                       Math.Max(1, Int(env("OMPI_COMM_WORLD_LOCAL_SIZE"))));
        if (Int(env("SLURM_STEP_NUM_TASKS")) is > 1 and var t && env("SLURM_PROCID") != null)
            return new("srun", "SLURM_STEP_NUM_TASKS", t, Int(env("SLURM_PROCID")), Int(env("SLURM_LOCALID")),
                       Math.Max(1, Leading(env("SLURM_STEP_TASKS_PER_NODE"))));
        return null;
    }

    /// <summary>This process's ranks from its environment (null: one process).</summary>
    public static Ranks? Current => Detect(Environment.GetEnvironmentVariable);

    /// <summary>True when this process is one rank of a job of several (mpirun or srun).</summary>
    public static bool UnderMpirun => Current != null;

    /// <summary>The ranks of this run: <see cref="DistContext.Single"/> without mpirun, else Open MPI
    /// initialised with the collective time limit <paramref name="timeoutSeconds"/>. A missing
    /// Open MPI library, or a launcher that is not Open MPI's, is a <see cref="ConfigException"/>
    /// naming the packages to install.</summary>
    public static DistContext Start(float timeoutSeconds, IReadOnlyList<string>? libraryNames = null)
    {
        var ranks = Current;
        if (ranks == null)
        {
            // MPICH's and Intel MPI's launchers (hydra) set PMI_SIZE; Slurm's srun sets SLURM_NTASKS.
            if (int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out int pmi) && pmi > 1)
                throw new ConfigException($"this process was started by an MPI launcher that is not Open MPI's (PMI_SIZE={pmi}). " +
                    "Ccr's data-parallel training uses Open MPI 4.x (libmpi.so.40): apt-get install openmpi-bin libopenmpi-dev, " +
                    "then start it with that package's mpirun");
            return DistContext.Single;
        }
        if (!(timeoutSeconds > 0)) throw new ConfigException($"distributed.timeout_s must be > 0, got {timeoutSeconds}");
        MpiRuntime rt;
        try
        {
            rt = MpiRuntime.Init(libraryNames);
        }
        catch (MpiUnavailableException e)
        {
            throw new ConfigException($"started by {ranks.Launcher} ({ranks.SizeVariable}={ranks.Size}), but {e.Message}" +
                (ranks.Launcher == "srun" ? " (srun needs an Open MPI built with Slurm's PMIx: srun --mpi=pmix)" : ""));
        }
        rt.Timeout = TimeSpan.FromSeconds(timeoutSeconds);
        var main = rt.Communicator("training");
        var grads = rt.Communicator("gradients");
        var dist = new DistContext(main, grads, rt, ranks.LocalRank);
        WatchTermination(dist, ranks.Launcher);
        if (dist.IsPrimary)
            Console.WriteLine($"distributed: {dist.Size} ranks over {rt.LibraryVersion}" +
                              (rt.ThreadMultiple ? "" : " (no MPI_THREAD_MULTIPLE: gradients are reduced after the backward pass)") +
                              // mpirun binds each rank to one core by default: the CPU accelerator then has one
                              (Environment.ProcessorCount == 1 ? "; rank 0 sees 1 core (mpirun binds each rank to one core by default: " +
                                  "on a CPU device add --bind-to none or --map-by slot:PE=N)" : ""));
        return dist;
    }

    static PosixSignalRegistration? _sigterm;
    static int _sigterms;

    /// <summary>Set by the train command once training runs: asks this rank's trainer to stop (the
    /// ranks agree on the step; rank 0 writes last.ckpt). Null before and after.</summary>
    public static volatile Action<string>? StopHook;

    /// <summary>
    /// SIGTERM reaches every rank when the job is cancelled (scancel, or a signal to mpirun) and when
    /// mpirun stops the survivors of a failed rank. While training runs, the first one finishes the
    /// current step on every rank, rank 0 writes last.ckpt, and each rank exits with 143 (what the
    /// launcher allows: scancel waits KillWait, 30 s by default, before SIGKILL; mpirun waits
    /// odls_base_sigkill_timeout). Before training, or at a second SIGTERM, the process ends at once.
    /// </summary>
    static void WatchTermination(DistContext dist, string launcher)
    {
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            var stop = StopHook;
            if (Interlocked.Increment(ref _sigterms) == 1 && stop != null)
            {
                ctx.Cancel = true;
                Console.Error.WriteLine($"rank {dist.Rank} of {dist.Size}: terminated by {launcher} (SIGTERM): the job was cancelled or another " +
                                        "rank failed; finishing the current step with the other ranks, then rank 0 writes last.ckpt");
                stop("SIGTERM");
                return;
            }
            Console.Error.WriteLine($"rank {dist.Rank} of {dist.Size}: terminated by {launcher} (SIGTERM): another rank failed " +
                                    "or the job was cancelled; see mpirun's message for which");
            Console.Error.Flush();
        });
    }

    /// <summary>One line per rank (printed by rank 0): collectives and the time spent in them.</summary>
    public static void ReportWaiting(DistContext dist)
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

}
