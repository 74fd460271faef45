using System.Text.Json;

namespace Ccr.Tests.Kernels;

/// <summary>PyTorch goldens written by tools/golden_*.py: a JSON object mapping a tensor name to
/// {"shape": [...], "data": [...]}, copied to the test output directory.</summary>
public static class NormFixtures
{
    public sealed record Entry(int[] Shape, float[] Data)
    {
        public double[] D => Array.ConvertAll(Data, x => (double)x);
    }

    public static Dictionary<string, Entry> Load(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "norm", file);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var r = new Dictionary<string, Entry>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var data = p.Value.GetProperty("data").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            r[p.Name] = new Entry(shape, data);
        }
        return r;
    }
}
