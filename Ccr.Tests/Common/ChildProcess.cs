using System.Diagnostics;
using System.Text;

namespace Ccr.Tests.Common;

/// <summary>Starting a child process (the CLI, mpirun) with stdout and stderr read as they come into one
/// buffer: the tests that watch a run from outside (signals, kills, ranks) share this.</summary>
public static class ChildProcess
{
    /// <summary>Starts <paramref name="psi"/> (its redirect flags are set here) with every line of both
    /// streams appended to <paramref name="output"/> (lock it to read while the process runs).</summary>
    public static Process Start(ProcessStartInfo psi, StringBuilder output)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
