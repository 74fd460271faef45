using System.Reflection;
using System.Runtime.InteropServices;

namespace Ccr.Kernels;

/// <summary>
/// Finds the CUDA driver for ILGPU. ILGPU 1.5.3 imports the driver as <c>[DllImport("cuda")]</c>,
/// which .NET probes on Linux as <c>libcuda.so</c> / <c>cuda.so</c> / <c>libcuda</c> / <c>cuda</c>;
/// many driver installs (containers with the NVIDIA runtime, machines without the driver's
/// development package) ship only <c>libcuda.so.1</c>, and then ILGPU sees no CUDA device at all and
/// <c>auto</c> quietly picks the CPU. <see cref="Install"/> gives ILGPU's assembly a resolver that
/// tries <see cref="Candidates"/> in order, once, before the first <c>Context</c> asks for CUDA.
/// </summary>
/// <remarks>
/// ILGPU sets a resolver of its own only under WSL (<c>CudaContextExtensions.CudaInternal</c>: when
/// /proc/version names Microsoft and /usr/lib/wsl/lib exists, it loads the driver from there), and
/// .NET allows one resolver per assembly (a second <c>SetDllImportResolver</c> throws
/// InvalidOperationException). So under WSL ours stays out and ILGPU's is left to work; and if some
/// other code set one first, ours stays out too, and says so in <see cref="Report"/>.
/// </remarks>
internal static class CudaLibrary
{
    /// <summary>The library name ILGPU's CUDA imports ask for on Linux (CudaAPI.xml: &lt;Linux&gt;cuda).</summary>
    public const string IlgpuName = "cuda";

    static readonly object Gate = new();
    static bool _installed;
    static readonly List<string> _tried = new();
    static string? _loaded;
    static string? _notInstalled;

    /// <summary>The file names to try, in order, for an import of <paramref name="libraryName"/>:
    /// on Linux, for ILGPU's "cuda", the unversioned development link first (what .NET's own
    /// probing would find), then the driver's runtime name <c>libcuda.so.1</c>; nothing for any other
    /// library or platform (the resolver then leaves the import to .NET's default probing).</summary>
    public static IReadOnlyList<string> Candidates(string libraryName, bool isLinux) =>
        isLinux && libraryName == IlgpuName ? ["libcuda.so", "libcuda.so.1"] : [];

    /// <summary>Resolves <paramref name="libraryName"/> by trying <see cref="Candidates"/> with
    /// <paramref name="tryLoad"/> in order; the first that loads wins, zero (default probing) when
    /// none does. <paramref name="tried"/> gets each name and whether it loaded.</summary>
    public static IntPtr Resolve(string libraryName, bool isLinux, Func<string, IntPtr> tryLoad, Action<string, bool>? tried = null)
    {
        foreach (var name in Candidates(libraryName, isLinux))
        {
            var h = tryLoad(name);
            tried?.Invoke(name, h != IntPtr.Zero);
            if (h != IntPtr.Zero) return h;
        }
        return IntPtr.Zero;
    }

    /// <summary>Installs the resolver on ILGPU's assembly (once; safe to call before every Context).</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (_installed) return;
            _installed = true;
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) { _notInstalled = "not Linux: ILGPU's own name is used"; return; }
            if (IsWsl()) { _notInstalled = "WSL: ILGPU's own resolver loads the driver from /usr/lib/wsl/lib"; return; }
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(ILGPU.Context).Assembly, ResolveForIlgpu);
            }
            catch (InvalidOperationException)
            {
                _notInstalled = "ILGPU's assembly already has a resolver: its own name lookup is used";
            }
        }
    }

    static IntPtr ResolveForIlgpu(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        Resolve(libraryName, isLinux: true,
            name => NativeLibrary.TryLoad(name, assembly, searchPath, out var h) ? h : IntPtr.Zero,
            (name, ok) =>
            {
                lock (Gate)
                {
                    _tried.Add(name);
                    if (ok) _loaded = name;
                }
            });

    /// <summary>What the resolver did, for the device line: the library that loaded, or the names
    /// tried without success, or why no resolver is installed. When ILGPU bound its imports before
    /// the resolver was installed (another Context made first: ILGPU then never looks again), the
    /// same names are tried here, so the line still says what is there.</summary>
    public static string Report()
    {
        lock (Gate)
        {
            if (_notInstalled != null) return $"CUDA driver lookup: {_notInstalled}";
            if (_tried.Count == 0 && RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
                Resolve(IlgpuName, true, name =>
                {
                    if (!NativeLibrary.TryLoad(name, out var h)) return IntPtr.Zero;
                    NativeLibrary.Free(h);
                    return h;
                }, (name, ok) => { _tried.Add(name); if (ok) _loaded = name; });
            if (_loaded != null) return $"CUDA driver {_loaded} loaded";
            return _tried.Count > 0 ? $"CUDA driver not found (tried {string.Join(", ", _tried.Distinct())})" : "no CUDA driver lookup on this platform";
        }
    }

    /// <summary>ILGPU's own test for WSL (CudaContextExtensions.IsRunningOnWSL in 1.5.3).</summary>
    static bool IsWsl()
    {
        try
        {
            return File.ReadAllText("/proc/version").Contains("Microsoft", StringComparison.OrdinalIgnoreCase)
                && Directory.Exists("/usr/lib/wsl/lib");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
