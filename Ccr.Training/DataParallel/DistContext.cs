using Ccr.Nn.Distributed;

namespace Ccr.Training.DataParallel;

/// <summary>
/// The ranks of this run: <see cref="Single"/> (one process, every collective a no-op) or an Open
/// MPI job started by mpirun (<see cref="Launcher.Start"/>). Rank 0 is the primary: the only one
/// that writes files or prints progress. The training thread's collectives go through
/// <see cref="Comm"/>; the gradient reducer, which may run on its own thread during the backward
/// pass, has <see cref="GradComm"/> (a separate MPI communicator, so the two streams of
/// collectives never match each other).
/// </summary>
public sealed class DistContext : IDisposable
{
    public static DistContext Single { get; } = new(SingleProcess.Instance, SingleProcess.Instance, null, 0);

    public ICommunicator Comm { get; }
    public ICommunicator GradComm { get; }
    public MpiRuntime? Runtime { get; }
    /// <summary>Rank among the processes of this machine (picks the GPU).</summary>
    public int LocalRank { get; }
    public int Rank => Comm.Rank;
    public int Size => Comm.Size;
    public bool IsPrimary => Rank == 0;
    public bool IsDistributed => Size > 1;
    /// <summary>The gradient averaging of the session built on this context (null: one rank).</summary>
    public GradientReducer? Reducer { get; internal set; }
    /// <summary>The test hook's fault for the session built on this context (<c>CCR_FAULT</c>, read
    /// once when the session is built), or null.</summary>
    public FaultInjection? Fault { get; internal set; }

    public DistContext(ICommunicator comm, ICommunicator gradComm, MpiRuntime? runtime, int localRank)
    {
        if (comm.Size != gradComm.Size || comm.Rank != gradComm.Rank)
            throw new ArgumentException("the two communicators of a DistContext must span the same ranks");
        Comm = comm; GradComm = gradComm; Runtime = runtime; LocalRank = localRank;
    }

    /// <summary>Runs <paramref name="make"/> on rank 0 first, then on the other ranks one local rank
    /// at a time: rank 0 generates the synthetic data set; with a shared file system the others then
    /// open its cached copy, and without one the first rank of each other machine generates that
    /// machine's copy while its neighbours wait (never two processes writing one folder).</summary>
    public T PrimaryFirst<T>(Func<T> make, string what)
    {
        if (!IsDistributed) return make();
        T result = default!;
        if (IsPrimary) result = make();
        Comm.Barrier($"waiting for rank 0 to prepare {what}", TimeSpan.FromHours(6));
        var locals = new long[] { LocalRank };
        Comm.AllReduce(locals, ReduceOp.Max, "the largest local rank");
        for (int l = 0; l <= locals[0]; l++)
        {
            if (!IsPrimary && LocalRank == l) result = make();
            Comm.Barrier($"waiting for local rank {l} of each machine to prepare {what}", TimeSpan.FromHours(6));
        }
        return result;
    }

    /// <summary>Stops every rank of the job (MPI_Abort); does not return. One rank: exits.</summary>
    public void Abort(int code)
    {
        if (Runtime != null) Runtime.Abort(code);
        Environment.Exit(code);
    }

    /// <summary>Stops the gradient thread and finalises MPI (collective).</summary>
    public void Dispose()
    {
        Reducer?.Dispose();
        Reducer = null;
        Runtime?.Dispose();
    }
}
