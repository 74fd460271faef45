using System.Globalization;
using System.Reflection;
using Ccr.Train.Cli;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Ccr.Train.Config;

/// <summary>
/// Loads a YAML config, applies <c>--set a.b=value</c> overrides, and refuses keys that do not
/// exist with the list of valid ones. Overrides are applied to the YAML tree before typing, so a
/// bad value is reported with its key.
/// </summary>
public static class ConfigLoader
{
    static readonly INamingConvention Naming = UnderscoredNamingConvention.Instance;

    public static TrainConfig Load(string? path, IEnumerable<string> overrides)
    {
        Dictionary<object, object?> tree = new();
        if (path != null)
        {
            string text = File.Exists(path) ? File.ReadAllText(path)
                : Preset(path) ?? throw new UsageException($"config file '{path}' does not exist (built-in presets: {string.Join(", ", Presets)})");
            var raw = new DeserializerBuilder().Build().Deserialize<object>(text);
            tree = raw as Dictionary<object, object?> ?? (raw == null ? new() : throw new UsageException($"config '{path}': top level must be a mapping"));
        }
        foreach (var o in overrides) ApplyOverride(tree, o);
        Validate(tree, typeof(TrainConfig), "", path ?? "--set");
        var yaml = new SerializerBuilder().Build().Serialize(tree);
        try
        {
            var cfg = new DeserializerBuilder().WithNamingConvention(Naming).Build().Deserialize<TrainConfig>(yaml) ?? new TrainConfig();
            cfg.Data.Seed ??= cfg.Seed; // configs without data.seed generate their data from the run's seed, as before
            return cfg;
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UsageException($"config {path ?? ""}: {e.InnerException?.Message ?? e.Message}");
        }
    }

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

    public static string ToYaml(TrainConfig c) =>
        new SerializerBuilder().WithNamingConvention(Naming).Build().Serialize(c);

    static void ApplyOverride(Dictionary<object, object?> tree, string o)
    {
        int eq = o.IndexOf('=');
        if (eq <= 0) throw new UsageException($"--set expects key=value, got '{o}'");
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

    /// <summary>Every key must name a property (snake_case) of the config class at that level.</summary>
    static void Validate(Dictionary<object, object?> tree, Type type, string prefix, string source)
    {
        var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .ToDictionary(p => Naming.Apply(p.Name), p => p);
        foreach (var (k, v) in tree)
        {
            string key = k.ToString() ?? "";
            if (!props.TryGetValue(key, out var prop))
                throw new UsageException($"{source}: unknown key '{prefix}{key}'. Valid keys here: " +
                    string.Join(", ", props.Keys.Select(p => prefix + p)));
            var t = Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType;
            bool nested = t.IsClass && t != typeof(string) && !t.IsGenericType;
            if (nested)
            {
                if (v is Dictionary<object, object?> sub) Validate(sub, t, prefix + key + ".", source);
                else throw new UsageException($"{source}: '{prefix}{key}' is a section; give its keys (e.g. {prefix}{key}.{Naming.Apply(t.GetProperties()[0].Name)}=...)");
            }
            else if (v is string s && (t == typeof(int) || t == typeof(float) || t == typeof(bool)))
            {
                bool ok = t == typeof(int) ? int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                        : t == typeof(float) ? float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                        : bool.TryParse(s, out _);
                if (!ok) throw new UsageException($"{source}: '{prefix}{key}' expects {t.Name.ToLowerInvariant()}, got '{s}'");
            }
        }
    }
}
