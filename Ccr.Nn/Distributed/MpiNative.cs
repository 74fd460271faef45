using System.Runtime.InteropServices;

namespace Ccr.Nn.Distributed;

/// <summary>Open MPI could not be used: the library is missing or is not Open MPI 4.x. The message
/// names the packages to install.</summary>
public sealed class MpiUnavailableException(string message) : Exception(message);

/// <summary>
/// The few functions of Open MPI 4.x's C API that Ccr uses, bound by hand to <c>libmpi.so.40</c>.
/// (MPI.NET binds MS-MPI's msmpi.dll and fails on Linux.) In Open MPI the predefined handles are
/// addresses of exported globals: MPI_COMM_WORLD is <c>&amp;ompi_mpi_comm_world</c>, MPI_FLOAT
/// <c>&amp;ompi_mpi_float</c>, MPI_SUM <c>&amp;ompi_mpi_op_sum</c>, so they come from
/// <see cref="NativeLibrary.GetExport"/>; MPI_IN_PLACE is <c>(void*)1</c> and MPI_STATUS_IGNORE
/// null (mpi.h). Handles (MPI_Comm, MPI_Request, ...) are pointers, so <c>nint</c> here.
/// Function pointers are unmanaged and unmarshalled: every argument is a plain integer or pointer.
/// </summary>
internal sealed unsafe class MpiNative
{
    public const int Success = 0;
    public const int ThreadMultiple = 3; // MPI_THREAD_SINGLE, FUNNELED, SERIALIZED, MULTIPLE = 0..3
    public static readonly nint InPlace = 1;
    public const string InstallHint = "install Open MPI 4.x: apt-get install openmpi-bin libopenmpi-dev";
    public static readonly string[] DefaultLibraryNames = ["libmpi.so.40", "libmpi.so"];

    public nint Library { get; private init; }
    public string LibraryName { get; private init; } = "";

    // predefined handles
    public nint CommWorld, ErrorsReturn, Float, Double, Int64, Byte, OpSum, OpMax, OpMin;

    public delegate* unmanaged<int*, int> Initialized;
    public delegate* unmanaged<int*, int> Finalized;
    public delegate* unmanaged<int*, nint, int, int*, int> InitThread;      // (argc*, argv***, required, provided*)
    public delegate* unmanaged<int> Finalize;
    public delegate* unmanaged<nint, int*, int> CommRank;
    public delegate* unmanaged<nint, int*, int> CommSize;
    public delegate* unmanaged<nint, nint*, int> CommDup;
    public delegate* unmanaged<nint*, int> CommFree;
    public delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int> Iallreduce; // (send, recv, count, type, op, comm, req*)
    public delegate* unmanaged<nint, int, nint, int, nint, nint*, int> Ibcast;          // (buf, count, type, root, comm, req*)
    public delegate* unmanaged<nint, nint*, int> Ibarrier;                             // (comm, req*)
    public delegate* unmanaged<nint*, int*, nint, int> Test;                           // (req*, flag*, status*)
    public delegate* unmanaged<nint, int, int> Abort;
    public delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public delegate* unmanaged<byte*, int*, int> GetLibraryVersion;

    MpiNative() { }

    /// <summary>Loads the first library of <paramref name="names"/> that exists and binds every
    /// symbol; throws <see cref="MpiUnavailableException"/> naming the packages when none loads or
    /// a symbol is missing (not Open MPI).</summary>
    public static MpiNative Load(IReadOnlyList<string>? names = null)
    {
        names ??= DefaultLibraryNames;
        nint lib = 0;
        string? loaded = null;
        foreach (var n in names)
            if (NativeLibrary.TryLoad(n, out lib)) { loaded = n; break; }
        if (loaded == null)
            throw new MpiUnavailableException($"Open MPI's library ({string.Join(" or ", names)}) was not found; {InstallHint}");
        var m = new MpiNative { Library = lib, LibraryName = loaded };
        nint Sym(string s) => NativeLibrary.TryGetExport(lib, s, out var p) ? p
            : throw new MpiUnavailableException($"{loaded} has no symbol '{s}': it is not Open MPI 4.x; {InstallHint}");
        m.CommWorld = Sym("ompi_mpi_comm_world");
        m.ErrorsReturn = Sym("ompi_mpi_errors_return");
        m.Float = Sym("ompi_mpi_float");
        m.Double = Sym("ompi_mpi_double");
        m.Int64 = Sym("ompi_mpi_int64_t");
        m.Byte = Sym("ompi_mpi_byte");
        m.OpSum = Sym("ompi_mpi_op_sum");
        m.OpMax = Sym("ompi_mpi_op_max");
        m.OpMin = Sym("ompi_mpi_op_min");
        m.Initialized = (delegate* unmanaged<int*, int>)Sym("MPI_Initialized");
        m.Finalized = (delegate* unmanaged<int*, int>)Sym("MPI_Finalized");
        m.InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Sym("MPI_Init_thread");
        m.Finalize = (delegate* unmanaged<int>)Sym("MPI_Finalize");
        m.CommRank = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_rank");
        m.CommSize = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_size");
        m.CommDup = (delegate* unmanaged<nint, nint*, int>)Sym("MPI_Comm_dup");
        m.CommFree = (delegate* unmanaged<nint*, int>)Sym("MPI_Comm_free");
        m.CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Sym("MPI_Comm_set_errhandler");
        m.Iallreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int>)Sym("MPI_Iallreduce");
        m.Ibcast = (delegate* unmanaged<nint, int, nint, int, nint, nint*, int>)Sym("MPI_Ibcast");
        m.Ibarrier = (delegate* unmanaged<nint, nint*, int>)Sym("MPI_Ibarrier");
        m.Test = (delegate* unmanaged<nint*, int*, nint, int>)Sym("MPI_Test");
        m.Abort = (delegate* unmanaged<nint, int, int>)Sym("MPI_Abort");
        m.ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Sym("MPI_Error_string");
        m.GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Sym("MPI_Get_library_version");
        return m;
    }

    /// <summary>MPI_Error_string of an error code.</summary>
    public string Describe(int code)
    {
        var buf = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        int len = 0;
        if (ErrorString(code, buf, &len) != Success) return $"MPI error {code}";
        return $"MPI error {code}: " + System.Text.Encoding.ASCII.GetString(buf, Math.Clamp(len, 0, 511));
    }

    /// <summary>The first line of MPI_Get_library_version ("Open MPI v4.1.4, ...").</summary>
    public string Version()
    {
        var buf = stackalloc byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING
        int len = 0;
        if (GetLibraryVersion(buf, &len) != Success) return "unknown";
        var s = System.Text.Encoding.ASCII.GetString(buf, Math.Clamp(len, 0, 8191));
        int nl = s.IndexOfAny(['\n', ',']);
        return (nl > 0 ? s[..nl] : s).Trim();
    }
}
