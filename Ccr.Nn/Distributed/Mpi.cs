using System.Diagnostics;

namespace Ccr.Nn.Distributed;

/// <summary>
/// The MPI library of this process: initialised once (MPI_Init_thread asking for
/// MPI_THREAD_MULTIPLE, so the gradient thread and the training thread may each run collectives
/// on their own communicator), finalised on <see cref="Dispose"/>. <see cref="Abort"/> stops every
/// rank of the job: mpirun kills the processes that are still running.
/// </summary>
public sealed unsafe class MpiRuntime : IDisposable
{
    readonly MpiNative _mpi;
    readonly List<MpiCommunicator> _comms = new();
    bool _finalized;

    public int Rank { get; }
    public int Size { get; }
    /// <summary>True when MPI granted MPI_THREAD_MULTIPLE (collectives from two threads at once).</summary>
    public bool ThreadMultiple { get; }
    public string LibraryVersion { get; }
    /// <summary>Time limit of every collective unless a call gives its own.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    MpiRuntime(MpiNative mpi, int rank, int size, bool multiple)
    {
        _mpi = mpi; Rank = rank; Size = size; ThreadMultiple = multiple;
        LibraryVersion = mpi.Version();
    }

    /// <summary>Loads Open MPI (the first of <paramref name="libraryNames"/> that exists) and
    /// initialises it. Throws <see cref="MpiUnavailableException"/> naming the packages when the
    /// library is missing.</summary>
    public static MpiRuntime Init(IReadOnlyList<string>? libraryNames = null)
    {
        var mpi = MpiNative.Load(libraryNames);
        int flag = 0, provided = 0, rank = 0, size = 0;
        Check(mpi, mpi.Initialized(&flag), "MPI_Initialized");
        if (flag != 0) throw new InvalidOperationException("MPI is already initialised in this process");
        Check(mpi, mpi.InitThread(null, 0, MpiNative.ThreadMultiple, &provided), "MPI_Init_thread");
        // Errors are returned as codes (and turned into DistributedException) instead of aborting
        // inside the library without a word about which collective failed.
        Check(mpi, mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        Check(mpi, mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(mpi, mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
        return new MpiRuntime(mpi, rank, size, provided >= MpiNative.ThreadMultiple);
    }

    static void Check(MpiNative mpi, int rc, string call)
    {
        if (rc != MpiNative.Success) throw new DistributedException($"{call} failed: {mpi.Describe(rc)}");
    }

    /// <summary>A new communicator over all ranks (MPI_Comm_dup of MPI_COMM_WORLD): collectives on
    /// different communicators never match each other, so two threads can each use their own.
    /// Collective: every rank calls it in the same order.</summary>
    public MpiCommunicator Communicator(string name)
    {
        nint comm;
        Check(_mpi, _mpi.CommDup(_mpi.CommWorld, &comm), "MPI_Comm_dup");
        Check(_mpi, _mpi.CommSetErrhandler(comm, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        var c = new MpiCommunicator(this, _mpi, comm, name, Rank, Size);
        _comms.Add(c);
        return c;
    }

    /// <summary>Stops every rank of the job with <paramref name="code"/> (MPI_Abort on
    /// MPI_COMM_WORLD); does not return.</summary>
    public void Abort(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _mpi.Abort(_mpi.CommWorld, code);
        Environment.Exit(code); // MPI_Abort returned: leave anyway
    }

    /// <summary>MPI_Finalize (collective: every rank must get here).</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        foreach (var c in _comms) c.Free();
        int rc = _mpi.Finalize();
        if (rc != MpiNative.Success) Console.Error.WriteLine($"rank {Rank}: MPI_Finalize: {_mpi.Describe(rc)}");
    }
}

/// <summary>
/// <see cref="ICommunicator"/> over an Open MPI communicator. Each collective is started
/// non-blocking (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) and then polled with MPI_Test until it
/// completes or the time limit passes: the watchdog. A rank that died or hangs would otherwise
/// leave its peers spinning inside a blocking call for ever (Open MPI's shared-memory transport
/// does not notice a dead peer; mpirun does, and kills the job, when the process exits). Polling
/// first spins (a collective between busy ranks completes in microseconds), then yields, then
/// sleeps 1 ms per poll, so a rank waiting long for a slow peer leaves its core to others.
/// Buffers are pinned for the duration of the call. Counts above 2^30 are split into chunks.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    const int MaxChunk = 1 << 30;
    readonly MpiRuntime _runtime;
    readonly MpiNative _mpi;
    nint _comm;

    public string Name { get; }
    public int Rank { get; }
    public int Size { get; }
    /// <summary>Time limit of a collective (the runtime's unless set here).</summary>
    public TimeSpan? Timeout { get; set; }
    /// <summary>Collectives completed on this communicator, and the time spent waiting for them
    /// (from start to completion: the transfer plus waiting for the slowest rank).</summary>
    public long Collectives { get; private set; }
    public TimeSpan WaitTime => Stopwatch.GetElapsedTime(0, _waitTicks);
    long _waitTicks;

    internal MpiCommunicator(MpiRuntime runtime, MpiNative mpi, nint comm, string name, int rank, int size)
    {
        _runtime = runtime; _mpi = mpi; _comm = comm; Name = name; Rank = rank; Size = size;
    }

    nint OpHandle(ReduceOp op) => op switch
    {
        ReduceOp.Sum => _mpi.OpSum,
        ReduceOp.Max => _mpi.OpMax,
        ReduceOp.Min => _mpi.OpMin,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public void AllReduce(Span<float> data, ReduceOp op, string what) => AllReduce(data, _mpi.Float, op, what);
    public void AllReduce(Span<double> data, ReduceOp op, string what) => AllReduce(data, _mpi.Double, op, what);
    public void AllReduce(Span<long> data, ReduceOp op, string what) => AllReduce(data, _mpi.Int64, op, what);

    void AllReduce<T>(Span<T> data, nint type, ReduceOp op, string what) where T : unmanaged
    {
        fixed (T* p = data)
            for (int start = 0; start < data.Length; start += MaxChunk)
            {
                int n = Math.Min(MaxChunk, data.Length - start);
                nint req;
                Check(_mpi.Iallreduce(MpiNative.InPlace, (nint)(p + start), n, type, OpHandle(op), _comm, &req), what);
                Wait(req, what, null);
            }
    }

    public void Broadcast(Span<byte> data, int root, string what)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"broadcast from rank {root} of {Size}");
        fixed (byte* p = data)
            for (int start = 0; start < data.Length; start += MaxChunk)
            {
                int n = Math.Min(MaxChunk, data.Length - start);
                nint req;
                Check(_mpi.Ibcast((nint)(p + start), n, _mpi.Byte, root, _comm, &req), what);
                Wait(req, what, null);
            }
    }

    public void Barrier(string what, TimeSpan? limit = null)
    {
        nint req;
        Check(_mpi.Ibarrier(_comm, &req), what);
        Wait(req, what, limit);
    }

    void Check(int rc, string what)
    {
        if (rc != MpiNative.Success) throw new DistributedException($"rank {Rank}: {what}: {_mpi.Describe(rc)}");
    }

    void Wait(nint req, string what, TimeSpan? limit)
    {
        var max = limit ?? Timeout ?? _runtime.Timeout;
        long start = Stopwatch.GetTimestamp();
        int flag = 0;
        for (long polls = 0; ; polls++)
        {
            Check(_mpi.Test(&req, &flag, 0), what);
            if (flag != 0)
            {
                Collectives++;
                _waitTicks += Stopwatch.GetTimestamp() - start;
                return;
            }
            if (polls < 2000) continue;
            var waited = Stopwatch.GetElapsedTime(start);
            if (waited > max)
                throw new DistributedException($"rank {Rank}: {what} did not complete within {max.TotalSeconds:0.#} s " +
                    "(distributed.timeout_s): another rank has stopped, hangs or is far behind");
            if (waited < TimeSpan.FromMilliseconds(5)) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    internal void Free()
    {
        if (_comm == 0) return;
        nint c = _comm;
        _comm = 0;
        _mpi.CommFree(&c);
    }
}
