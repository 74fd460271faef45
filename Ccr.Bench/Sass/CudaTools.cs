using System.Diagnostics;

namespace Ccr.Bench.Sass;

/// <summary>
/// NVIDIA's offline tools (CUDA 11.8 <c>ptxas</c> and <c>nvdisasm</c>, from tools/get-cuda-tools.sh):
/// PTX -> cubin for sm_90 / sm_80 with ptxas's resource report, and cubin -> SASS text. Neither needs a
/// GPU or a driver.
/// </summary>
public sealed class CudaTools
{
    public const string EnvVar = "CCR_CUDA_TOOLS";
    public const string Missing = "ptxas / nvdisasm not found: run tools/get-cuda-tools.sh (it unpacks them into .cuda-tools/), or pass --tools DIR or set " + EnvVar;

    public string Bin { get; }
    public string Ptxas => Path.Combine(Bin, "ptxas");
    public string Nvdisasm => Path.Combine(Bin, "nvdisasm");

    CudaTools(string bin) => Bin = bin;

    /// <summary>The tools from, in order: <paramref name="dir"/>, $CCR_CUDA_TOOLS, .cuda-tools/usr/bin of the
    /// working directory or of the repository above this program, then PATH. Null when none has both.</summary>
    public static CudaTools? Find(string? dir = null)
    {
        if (dir != null) return Has(dir) ? new CudaTools(Path.GetFullPath(dir)) : null; // asked for: no fallback
        foreach (var c in Candidates())
            if (Has(c)) return new CudaTools(Path.GetFullPath(c));
        return null;
    }

    static IEnumerable<string> Candidates()
    {
        if (Environment.GetEnvironmentVariable(EnvVar) is { Length: > 0 } env) yield return env;
        yield return Path.Combine(".cuda-tools", "usr", "bin");
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Ccr.sln")))
            {
                yield return Path.Combine(d.FullName, ".cuda-tools", "usr", "bin");
                break;
            }
        foreach (var p in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            yield return p;
    }

    static bool Has(string dir) => File.Exists(Path.Combine(dir, "ptxas")) && File.Exists(Path.Combine(dir, "nvdisasm"));

    /// <summary>Assembles <paramref name="ptxFile"/> for <paramref name="arch"/> (sm_90, sm_80) into
    /// <paramref name="cubinFile"/>; returns ptxas's -v report (its stderr). Throws with ptxas's message on failure.</summary>
    public string Assemble(string ptxFile, string cubinFile, string arch) =>
        Run(Ptxas, ["-arch=" + arch, "-v", "-o", cubinFile, ptxFile]).Err;

    /// <summary>The SASS of <paramref name="cubinFile"/> (nvdisasm -c: code sections only).</summary>
    public string Disassemble(string cubinFile) => Run(Nvdisasm, ["-c", cubinFile]).Out;

    static (string Out, string Err) Run(string exe, string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string e = err.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(exe)} {string.Join(' ', args)} failed ({p.ExitCode}): {e.Trim()}");
        return (o, e);
    }
}
