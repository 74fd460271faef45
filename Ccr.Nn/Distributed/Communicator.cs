using System.Runtime.InteropServices;

namespace Ccr.Nn.Distributed;

public enum ReduceOp { Sum, Max, Min }

/// <summary>A collective failed or did not complete in time; the message names this rank, the
/// collective and the reason. The caller stops every rank (<see cref="MpiRuntime.Abort"/>).</summary>
public sealed class DistributedException(string message) : Exception(message);

/// <summary>
/// The collectives data-parallel training needs, over the ranks of one job. Every call is
/// blocking and collective: every rank makes the same calls in the same order, with the same
/// lengths. <paramref name="what"/> names the call in error messages ("gradient bucket 3 of 7").
/// Implementations: <see cref="MpiCommunicator"/> (Open MPI, one process per rank) and
/// <see cref="SingleProcess"/> (one rank: every call is a no-op).
/// </summary>
public interface ICommunicator
{
    int Rank { get; }
    int Size { get; }
    void AllReduce(Span<float> data, ReduceOp op, string what);
    void AllReduce(Span<double> data, ReduceOp op, string what);
    void AllReduce(Span<long> data, ReduceOp op, string what);
    /// <summary>Copies <paramref name="root"/>'s bytes to every rank.</summary>
    void Broadcast(Span<byte> data, int root, string what);
    /// <summary>Waits for every rank; <paramref name="limit"/> replaces the default time limit
    /// (a rank preparing data for the others may take long).</summary>
    void Barrier(string what, TimeSpan? limit = null);
}

public static class CommunicatorExtensions
{
    /// <summary>Broadcasts any unmanaged values as their bytes.</summary>
    public static void Broadcast<T>(this ICommunicator c, Span<T> data, int root, string what) where T : unmanaged =>
        c.Broadcast(MemoryMarshal.AsBytes(data), root, what);

    /// <summary>The mean over ranks of each value (a sum divided by the rank count).</summary>
    public static void AllReduceMean(this ICommunicator c, Span<double> data, string what)
    {
        c.AllReduce(data, ReduceOp.Sum, what);
        for (int i = 0; i < data.Length; i++) data[i] /= c.Size;
    }
}

/// <summary>One rank, no communication: what a run without mpirun uses.</summary>
public sealed class SingleProcess : ICommunicator
{
    public static SingleProcess Instance { get; } = new();
    public int Rank => 0;
    public int Size => 1;
    public void AllReduce(Span<float> data, ReduceOp op, string what) { }
    public void AllReduce(Span<double> data, ReduceOp op, string what) { }
    public void AllReduce(Span<long> data, ReduceOp op, string what) { }
    public void Broadcast(Span<byte> data, int root, string what)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), $"broadcast from rank {root} of 1");
    }
    public void Barrier(string what, TimeSpan? limit = null) { }
}
