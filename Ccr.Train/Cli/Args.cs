namespace Ccr.Train.Cli;

/// <summary>
/// A small GNU-style argument reader: <c>--key value</c>, <c>--key=value</c>, flags, and repeated
/// <c>--set key=value</c>. Every option a command reads is declared, so an unknown option is an
/// error that lists the valid ones and <c>--help</c> can print them all.
/// </summary>
public sealed class Args
{
    readonly Dictionary<string, List<string>> _values = new();
    readonly HashSet<string> _flags = new();
    public List<string> Positional { get; } = new();

    public sealed record Option(string Name, string Help, bool IsFlag = false, bool Repeatable = false, string? Default = null);

    public static Args Parse(string command, string[] argv, IReadOnlyList<Option> options)
    {
        var a = new Args();
        var byName = options.ToDictionary(o => o.Name);
        for (int i = 0; i < argv.Length; i++)
        {
            string s = argv[i];
            if (!s.StartsWith("--")) { a.Positional.Add(s); continue; }
            string name = s[2..], value = "";
            int eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            if (name == "help") { a._flags.Add("help"); continue; }
            if (!byName.TryGetValue(name, out var opt))
                throw new UsageException($"{command}: unknown option --{name}. Valid options: " +
                    string.Join(", ", options.Select(o => "--" + o.Name)) + ", --help");
            if (opt.IsFlag) { a._flags.Add(name); continue; }
            if (eq < 0)
            {
                if (i + 1 >= argv.Length) throw new UsageException($"{command}: --{name} needs a value");
                value = argv[++i];
            }
            if (!a._values.TryGetValue(name, out var list)) a._values[name] = list = new List<string>();
            if (list.Count > 0 && !opt.Repeatable) throw new UsageException($"{command}: --{name} given twice");
            list.Add(value);
        }
        foreach (var o in options)
            if (o.Default != null && !a._values.ContainsKey(o.Name)) a._values[o.Name] = new List<string> { o.Default };
        return a;
    }

    public bool Help => _flags.Contains("help");
    public bool Flag(string name) => _flags.Contains(name);
    public string? Get(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;
    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var l) ? l : Array.Empty<string>();

    public int? GetInt(string name)
    {
        var s = Get(name);
        if (s == null) return null;
        return int.TryParse(s, out int v) ? v : throw new UsageException($"--{name} expects an integer, got '{s}'");
    }

    public static string Usage(string usage, string summary, IReadOnlyList<Option> options)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"usage: {usage}").AppendLine().AppendLine(summary).AppendLine().AppendLine("options:");
        foreach (var o in options)
        {
            string left = "--" + o.Name + (o.IsFlag ? "" : " VALUE");
            string def = o.Default != null ? $" (default: {o.Default})" : "";
            sb.AppendLine($"  {left,-26} {o.Help}{def}{(o.Repeatable ? " (repeatable)" : "")}");
        }
        sb.AppendLine($"  {"--help",-26} print this help");
        return sb.ToString();
    }
}

/// <summary>Bad command-line use: printed without a stack trace, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
