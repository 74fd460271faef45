using Ccr.Tests.Common;
using Ccr.Training.Data;

namespace Ccr.Tests.Data;

/// <summary>Paths of committed fixtures, scratch folders, and the one tolerance helper of these tests.</summary>
public static class TestData
{
    /// <summary>The repository root (the folder holding Ccr.sln), found upwards from the test binary.</summary>
    public static string RepoRoot
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "Ccr.sln"))) d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("Ccr.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    public static string DataFixture(string name) => Path.Combine(RepoRoot, "data", "fixtures", name);

    /// <summary>A fresh empty folder under the system temp dir.</summary>
    public static string TempDir(string tag)
    {
        string d = Path.Combine(Path.GetTempPath(), "ccr-tests", tag + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Copies a committed fixture dataset to a scratch folder that a test may damage.</summary>
    public static string CopyFixture(string name)
    {
        string src = DataFixture(name), dst = TempDir(name);
        foreach (string f in Directory.GetFiles(src, "*", SearchOption.AllDirectories))
        {
            string t = Path.Combine(dst, Path.GetRelativePath(src, f));
            Directory.CreateDirectory(Path.GetDirectoryName(t)!);
            File.Copy(f, t);
        }
        return dst;
    }

    public static int[] ReadInts(string path) => Npy.Read(path).Data.Select(v => (int)v).ToArray();

    /// <summary><see cref="Tol.Close(double, double, double, double, string)"/> with the metric tests'
    /// defaults (atol 1e-6, rtol 0): one tolerance rule, one NaN rule, in the whole suite.</summary>
    public static void Close(double expected, double got, double atol = 1e-6, double rtol = 0, string what = "") =>
        Tol.Close(expected, got, atol, rtol, what);
}
