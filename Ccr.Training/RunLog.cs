using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Ccr.Training;

/// <summary>
/// The run folder's machine-readable logs: metrics.csv (one row per logged step, columns fixed at
/// the first row) and eval.json files. Appends, so a resumed run continues the same CSV. Creating a
/// RunLog writes nothing (the folder is made by the first row).
/// </summary>
public sealed class RunLog
{
    public string Dir { get; }
    public string MetricsCsv => Path.Combine(Dir, "metrics.csv");
    string[]? _columns;

    public RunLog(string dir)
    {
        Dir = dir;
        if (File.Exists(MetricsCsv))
        {
            var header = File.ReadLines(MetricsCsv).FirstOrDefault();
            if (!string.IsNullOrEmpty(header)) _columns = header.Split(',');
        }
    }

    /// <summary>Appends one row; the first row fixes the columns (a later unknown column is an error).</summary>
    public void Row(IReadOnlyDictionary<string, double> values)
    {
        var sb = new StringBuilder();
        if (_columns == null)
        {
            _columns = values.Keys.ToArray();
            sb.AppendLine(string.Join(",", _columns));
        }
        foreach (var k in values.Keys)
            if (Array.IndexOf(_columns, k) < 0) throw new InvalidOperationException($"metrics.csv: column '{k}' not in the header");
        sb.AppendLine(string.Join(",", _columns.Select(c => values.TryGetValue(c, out var v) ? v.ToString("G7", CultureInfo.InvariantCulture) : "")));
        Directory.CreateDirectory(Dir);
        File.AppendAllText(MetricsCsv, sb.ToString());
    }

    /// <summary>Keeps the rows of the steps before <paramref name="step"/> (the next step a resumed
    /// run takes: its checkpoint holds steps 0 .. step - 1) and drops the rest, which the resumed run
    /// logs again.</summary>
    public void TruncateAfter(long step)
    {
        if (!File.Exists(MetricsCsv)) return;
        var lines = File.ReadAllLines(MetricsCsv);
        if (lines.Length == 0) return;
        var keep = new List<string> { lines[0] };
        foreach (var l in lines.Skip(1))
        {
            var first = l.Split(',')[0];
            if (double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s < step) keep.Add(l);
        }
        File.WriteAllLines(MetricsCsv, keep);
    }

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void WriteEval(string path, Dictionary<string, Dictionary<string, double>> metrics, double? deltaM)
    {
        var root = new Dictionary<string, object>();
        foreach (var (task, m) in metrics) root[task] = m;
        if (deltaM is double dm) root["delta_m"] = dm;
        // whole or not at all: a full disk leaves the previous file
        string tmp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            File.WriteAllText(tmp, JsonSerializer.Serialize(root, Json));
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
