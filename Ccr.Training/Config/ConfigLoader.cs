using YamlDotNet.Serialization;

namespace Ccr.Training.Config;

/// <summary>
/// Loads a YAML config the one way every command does: the file or preset text and the
/// <c>--set a.b=value</c> overrides become one node tree, the tree becomes a typed
/// <see cref="TrainConfig"/> (<see cref="ConfigSchema"/>), and <see cref="ConfigChecks"/> reports
/// every problem of it, each with its key, in one error.
/// </summary>
public static class ConfigLoader
{
    /// <summary>
    /// The config from <paramref name="path"/> (a YAML file or a built-in preset name; null: the
    /// defaults) with <paramref name="overrides"/> applied, typed and checked. Every problem is a
    /// <see cref="ConfigException"/> whose one line names the file (with line and column for YAML
    /// syntax) or the key.
    /// </summary>
    public static TrainConfig Load(string? path, IEnumerable<string> overrides)
    {
        if (path == null) return FromText(null, "--set", overrides);
        string text;
        if (Directory.Exists(path)) throw new ConfigException($"config file '{path}' is a folder, not a YAML file");
        if (File.Exists(path))
        {
            // 0 bytes: an empty file would train the built-in defaults, and a pipe (FIFO) or device
            // would block the read; neither is a config
            if (new FileInfo(path).Length == 0)
                throw new ConfigException($"config file '{path}' is empty (or a pipe or device, which is not read): " +
                    $"write its keys, or name a preset ({string.Join(", ", Presets)})");
            try { text = File.ReadAllText(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException($"config file '{path}' cannot be read: {e.Message}");
            }
        }
        else text = Preset(path) ?? throw new ConfigException($"config file '{path}' does not exist (built-in presets: {string.Join(", ", Presets)})");
        return FromText(text, path, overrides, emptyIsError: true);
    }

    /// <summary>Like <see cref="Load"/> for config text already in hand (a checkpoint's saved config);
    /// <paramref name="source"/> names it in errors.</summary>
    /// <param name="emptyIsError">A text without any key (only comments) is a usage error rather
    /// than the built-in defaults (a config file; a checkpoint's saved config is checked by its caller).</param>
    public static TrainConfig FromText(string? text, string source, IEnumerable<string> overrides, bool emptyIsError = false)
    {
        Dictionary<object, object?> tree = new();
        if (text != null)
        {
            CheckSyntax(text, source);
            object? raw;
            try { raw = new DeserializerBuilder().Build().Deserialize<object>(text); }
            catch (YamlDotNet.Core.YamlException e)
            {
                throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: YAML syntax error: {YamlMessage(e)}");
            }
            if (raw == null && emptyIsError)
                throw new ConfigException($"config file '{source}' holds no keys (only comments or blank lines): " +
                    $"write its keys, or name a preset ({string.Join(", ", Presets)})");
            tree = raw as Dictionary<object, object?> ?? (raw == null ? new() : throw new ConfigException($"config '{source}': top level must be a mapping of keys"));
        }
        foreach (var o in overrides) ApplyOverride(tree, o);
        // one tree (file or preset, then every --set) -> one typed record -> one check of everything
        var problems = new List<string>();
        var c = ConfigSchema.Read(tree, problems);
        c = c with
        {
            // configs without data.seed generate their data from the run's seed, as before
            Data = c.Data with { Seed = c.Data.Seed ?? c.Seed },
            Eval = string.IsNullOrEmpty(c.Eval.Metric) && c.Tasks.Count > 0 && c.Tasks.All(Data.TaskNames.All.Contains)
                ? c.Eval with { Metric = EvalMetrics.Default(c.Tasks) } : c.Eval,
        };
        ConfigChecks.Validate(c, text != null ? source : "config", problems);
        return c;
    }

    /// <summary>
    /// Syntax errors and duplicate keys (which YamlDotNet would silently resolve to the last one) as
    /// "FILE:LINE:COLUMN: ...". Tabs in the indentation are named on their own line, as YamlDotNet
    /// reports them at the start of the enclosing mapping.
    /// </summary>
    static void CheckSyntax(string text, string source)
    {
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string indent = lines[i][..(lines[i].Length - lines[i].TrimStart(' ', '\t').Length)];
            int tab = indent.IndexOf('\t');
            if (tab >= 0) throw new ConfigException($"{source}:{i + 1}:{tab + 1}: YAML syntax error: a tab in the indentation (YAML indents with spaces)");
        }
        var parser = new YamlDotNet.Core.Parser(new StringReader(text));
        var stack = new Stack<MappingFrame?>();  // null: a sequence
        YamlDotNet.Core.Mark last = YamlDotNet.Core.Mark.Empty;
        try
        {
            while (parser.MoveNext())
            {
                last = parser.Current!.Start;
                var top = stack.Count > 0 ? stack.Peek() : null;
                switch (parser.Current)
                {
                    case YamlDotNet.Core.Events.MappingStart:
                        if (top != null) top.ExpectKey = true;
                        stack.Push(new MappingFrame());
                        break;
                    case YamlDotNet.Core.Events.SequenceStart:
                        if (top != null) top.ExpectKey = true;
                        stack.Push(null);
                        break;
                    case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                        stack.Pop();
                        break;
                    case YamlDotNet.Core.Events.Scalar sc when top != null:
                        if (top.ExpectKey && !top.Keys.Add(sc.Value))
                            throw new ConfigException($"{source}:{sc.Start.Line}:{sc.Start.Column}: duplicate key '{sc.Value}'");
                        top.ExpectKey = !top.ExpectKey;
                        break;
                    case YamlDotNet.Core.Events.AnchorAlias when top != null:
                        top.ExpectKey = !top.ExpectKey;
                        break;
                }
            }
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: YAML syntax error: {YamlMessage(e)}");
        }
        catch (InvalidOperationException)  // YamlDotNet's scanner at the end of an unclosed flow collection
        {
            throw new ConfigException($"{source}:{last.Line}:{last.Column}: YAML syntax error: cannot parse past here (an unclosed '[' or '{{'?)");
        }
    }

    sealed class MappingFrame
    {
        public readonly HashSet<string> Keys = new();
        public bool ExpectKey = true;
    }

    /// <summary>YamlDotNet's message without its "(Line: .., Col: .., Idx: ..) - (...): " prefix.</summary>
    static string YamlMessage(YamlDotNet.Core.YamlException e) =>
        System.Text.RegularExpressions.Regex.Replace(e.Message, @"^\(Line: [^)]*\) - \(Line: [^)]*\): ", "");

    /// <summary>Names of the configs built into the program (the repository's configs/*.yaml).</summary>
    public static IEnumerable<string> Presets =>
        typeof(ConfigLoader).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("configs/") && n.EndsWith(".yaml"))
            .Select(n => n["configs/".Length..^".yaml".Length]).Order();

    /// <summary>The text of a built-in config by name ("synth-cpu"), or null.</summary>
    public static string? Preset(string name)
    {
        using var s = typeof(ConfigLoader).Assembly.GetManifestResourceStream($"configs/{name}.yaml");
        return s == null ? null : new StreamReader(s).ReadToEnd();
    }

    /// <summary>The resolved config as a run folder's config.yaml: every key, snake_case, choices as
    /// their lower-case words; <see cref="FromText"/> reads it back to an equal record.</summary>
    public static string ToYaml(TrainConfig c) => new SerializerBuilder().Build().Serialize(ConfigSchema.Write(c));

    static void ApplyOverride(Dictionary<object, object?> tree, string o)
    {
        int eq = o.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"--set expects key=value, got '{o}'");
        var keys = o[..eq].Split('.');
        string value = o[(eq + 1)..];
        var node = tree;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            if (!node.TryGetValue(keys[i], out var child) || child is not Dictionary<object, object?> map)
                node[keys[i]] = map = new Dictionary<object, object?>();
            node = map;
        }
        object? parsed = value;
        if (value.StartsWith('[') && value.EndsWith(']'))
            parsed = value[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Cast<object?>().ToList();
        node[keys[^1]] = parsed;
    }
}
