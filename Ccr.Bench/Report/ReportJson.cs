using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ccr.Bench.Report;

/// <summary>
/// One measured row, the unit both sides write: ours (<c>Ccr.Bench report</c> → ours.json) and
/// PyTorch's (tools/torch_*baseline.py --json → torch_*.json), joined by <see cref="Id"/> into the
/// report's table. <see cref="Status"/> is "ok", "skipped: why" or "FAIL: why"; <see cref="Ms"/> is set only when something was timed. <see cref="Extra"/> holds
/// derived numbers (gflops, gbs, peak_mib, launches, parameters, ...).
/// </summary>
public sealed class ResultRow
{
    public string Id { get; set; } = "";
    public string Part { get; set; } = "";
    public string What { get; set; } = "";
    public string Shape { get; set; } = "";
    public string Precision { get; set; } = "";
    public double? Ms { get; set; }
    public string Status { get; set; } = "ok";
    public Dictionary<string, double> Extra { get; set; } = new();

    [JsonIgnore] public bool Ok => Status == "ok";

    public static string Fail(Exception e) => "FAIL: " + OneLine(e.GetType().Name + ": " + e.Message);

    public static string OneLine(string s)
    {
        s = s.Replace('\n', ' ').Replace('\r', ' ').Replace('|', '/');
        return s.Length > 300 ? s[..300] + "..." : s;
    }
}

/// <summary>A results file: who measured (side), where (meta) and the rows.</summary>
public sealed class ResultFile
{
    public string Side { get; set; } = "";
    public Dictionary<string, string> Meta { get; set; } = new();
    public List<ResultRow> Results { get; set; } = new();

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Reads a results file; a missing or unreadable one gives null and the reason.</summary>
    public static ResultFile? TryLoad(string path, out string why)
    {
        why = "";
        if (!File.Exists(path)) { why = $"{Path.GetFileName(path)} was not written"; return null; }
        try
        {
            var f = JsonSerializer.Deserialize<ResultFile>(File.ReadAllText(path), Json);
            if (f == null) why = $"{Path.GetFileName(path)} is empty";
            return f;
        }
        catch (JsonException e)
        {
            why = $"{Path.GetFileName(path)} is not valid JSON: {ResultRow.OneLine(e.Message)}";
            return null;
        }
    }
}
