using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Ccr.Tests.Common;

namespace Ccr.Tests.Distributed;

/// <summary>
/// Starts <c>mpirun -np N dotnet Ccr.Train.dll ...</c> from a test, with the environment CI needs
/// (root allowed, no cross-memory-attach copies, which containers often forbid) and a hard time
/// limit after which the whole process tree is killed (a hang fails the test instead of blocking
/// the suite). <see cref="Available"/> is false only where Open MPI really is absent: no mpirun on
/// the PATH, or no libmpi.so.40 to load.
/// </summary>
public static class MpiRun
{
    public static readonly string MissingReason = "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev)";

    public static bool Available { get; } = FindOnPath("mpirun") != null && NativeLibrary.TryLoad("libmpi.so.40", out _);

    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed, bool TimedOut);

    static string? FindOnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, exe)).FirstOrDefault(File.Exists);

    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH).</summary>
    static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";

    public static Result Train(int ranks, IEnumerable<string> args, TimeSpan limit, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(FindOnPath("mpirun")!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-np", ranks.ToString(), "--oversubscribe", "--bind-to", "none" }) psi.ArgumentList.Add(a);
        foreach (var k in env?.Keys ?? []) { psi.ArgumentList.Add("-x"); psi.ArgumentList.Add(k); }
        psi.ArgumentList.Add(DotnetHost());
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ccr.Train.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        psi.Environment["CI"] = "true"; // plain progress lines
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;

        var output = new StringBuilder();
        var sw = Stopwatch.StartNew();
        using var p = ChildProcess.Start(psi, output);
        bool done = p.WaitForExit(limit);
        if (!done)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
        }
        else p.WaitForExit(); // drains the output
        sw.Stop();
        lock (output) return new Result(done ? p.ExitCode : -1, output.ToString(), sw.Elapsed, !done);
    }
}
