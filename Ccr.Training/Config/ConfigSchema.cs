using System.Globalization;
using System.Reflection;
using Ccr.Nn.Contrastive;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Ccr.Training.Config;

/// <summary>
/// The YAML side of <see cref="TrainConfig"/>: which key names which property, how a node tree
/// (nested <c>Dictionary&lt;object, object?&gt;</c> of string scalars and lists, as YamlDotNet
/// reads any YAML and as <c>--set</c> edits it) becomes the typed record, and how the record is
/// written back as config.yaml. Reading collects every problem with its key instead of stopping at
/// the first; <see cref="ConfigChecks"/> then adds the value checks and reports them all at once.
/// </summary>
public static class ConfigSchema
{
    static readonly INamingConvention Naming = UnderscoredNamingConvention.Instance;

    /// <summary>The <c>ccr:</c> keys as users have always written them, in config.yaml's order,
    /// mapped onto Ccr.Nn's <see cref="CcrConfig"/> (whose names follow the paper). HiddenDim and
    /// CollectSamples are not config keys.</summary>
    static readonly (string Key, PropertyInfo Prop)[] CcrFields =
    [
        .. new (string, string)[]
        {
            ("enabled", nameof(CcrConfig.Enabled)), ("margin", nameof(CcrConfig.Margin)), ("gamma", nameof(CcrConfig.Gamma)),
            ("min_anchors", nameof(CcrConfig.MinAnchors)), ("top_k", nameof(CcrConfig.TopK)),
            ("negatives", nameof(CcrConfig.NumNegatives)), ("lambda", nameof(CcrConfig.Lambda)),
            ("ramp_epochs", nameof(CcrConfig.RampEpochs)), ("sampling", nameof(CcrConfig.Sampling)),
            ("sharing", nameof(CcrConfig.Sharing)), ("pair_selection", nameof(CcrConfig.Pairs)),
            ("proj_dim", nameof(CcrConfig.ProjectionDim)),
        }.Select(f => (f.Item1, typeof(CcrConfig).GetProperty(f.Item2)!)),
    ];

    /// <summary>(YAML key, property) of a section, in the order config.yaml lists them: the snake_case
    /// of each property of Ccr.Training's records, the table above for <see cref="CcrConfig"/>.</summary>
    public static IReadOnlyList<(string Key, PropertyInfo Prop)> Fields(Type section) =>
        section == typeof(CcrConfig) ? CcrFields
        : section.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => (Naming.Apply(p.Name), p)).ToList();

    /// <summary>A nested record (data, model, train, ccr, eval, distributed) rather than a value.</summary>
    static bool IsSection(Type t) => t.IsClass && t != typeof(string) && !t.IsGenericType;

    /// <summary>
    /// The typed config of a node tree: every key given replaces its default. Each unknown key, value
    /// of the wrong type or unknown choice adds "key ...: what is wrong" to <paramref name="problems"/>
    /// and leaves that key's default, so one pass finds them all.
    /// </summary>
    public static TrainConfig Read(Dictionary<object, object?> tree, List<string> problems) =>
        (TrainConfig)ReadSection(typeof(TrainConfig), tree, "", problems);

    static object ReadSection(Type type, Dictionary<object, object?> map, string prefix, List<string> problems)
    {
        object section = Activator.CreateInstance(type)!; // the defaults; init setters are set once, here, before anyone sees it
        var fields = Fields(type);
        foreach (var (k, v) in map)
        {
            string key = Convert.ToString(k, CultureInfo.InvariantCulture) ?? "";
            var prop = fields.FirstOrDefault(f => f.Key == key).Prop;
            if (prop == null)
            {
                problems.Add($"unknown key '{prefix}{key}'. Valid keys here: " + string.Join(", ", fields.Select(f => prefix + f.Key)));
                continue;
            }
            if (ReadValue(prop.PropertyType, prop.GetValue(section), v, prefix + key, problems, out var value))
                prop.SetValue(section, value);
        }
        return section;
    }

    static bool ReadValue(Type type, object? fallback, object? node, string key, List<string> problems, out object? value)
    {
        value = null;
        bool Fail(string problem) { problems.Add(problem); return false; }
        if (IsSection(type))
        {
            if (node is Dictionary<object, object?> sub) { value = ReadSection(type, sub, key + ".", problems); return true; }
            return Fail($"'{key}' is a section; give its keys (e.g. {key}.{Fields(type)[0].Key}=...)");
        }
        if (type == typeof(IReadOnlyDictionary<string, float>))
            return ReadWeights((IReadOnlyDictionary<string, float>)fallback!, node, key, problems, out value);
        if (type == typeof(IReadOnlyList<string>))
        {
            if (node == null) { value = Array.Empty<string>(); return true; } // "tasks:" with nothing: no tasks (checked later)
            if (node is not List<object?> items || items.Any(i => i is not string))
                return Fail($"'{key}' expects a list of names, e.g. [semseg, depth]");
            value = items.Cast<string>().ToArray();
            return true;
        }
        if (node == null) return false; // "key:" with no value keeps the default
        if (node is not string s) return Fail($"'{key}' expects a single value, not a list or section");
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (ConfigEnums.IsConfigEnum(t))
        {
            value = ConfigEnums.Parse(t, s);
            return value != null || Fail($"{key} = {(s.Length == 0 ? "''" : s)}: must be one of {string.Join(", ", ConfigEnums.WordsOf(t))}");
        }
        if (t == typeof(int))
        {
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)) return Fail($"'{key}' expects an integer, got '{s}'");
            value = i;
        }
        else if (t == typeof(float))
        {
            if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) || !float.IsFinite(f))
                return Fail($"'{key}' expects a finite number, got '{s}'");
            value = f;
        }
        else if (t == typeof(bool))
        {
            if (!bool.TryParse(s, out bool b)) return Fail($"'{key}' expects true or false, got '{s}'");
            value = b;
        }
        else if (t == typeof(string)) value = s;
        else throw new InvalidOperationException($"config key '{key}' has type {t.Name}, which ConfigSchema cannot read");
        return true;
    }

    /// <summary>loss_weights: the weights given (in their order), then the defaults of the tasks not
    /// given, so <c>--set loss_weights.semseg=2</c> changes one weight and keeps the others.</summary>
    static bool ReadWeights(IReadOnlyDictionary<string, float> defaults, object? node, string key, List<string> problems, out object? value)
    {
        value = null;
        if (node == null) return false;
        if (node is not Dictionary<object, object?> map)
        {
            problems.Add($"'{key}' is a map of task: weight (e.g. {key}.semseg=2)");
            return false;
        }
        var weights = new Dictionary<string, float>();
        bool ok = true;
        foreach (var (k, v) in map)
        {
            string task = Convert.ToString(k, CultureInfo.InvariantCulture) ?? "";
            if (v is string s && float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float w) && float.IsFinite(w))
                weights[task] = w;
            else { problems.Add($"'{key}.{task}' expects a number, got '{v}'"); ok = false; }
        }
        foreach (var (task, w) in defaults) weights.TryAdd(task, w);
        value = weights;
        return ok;
    }

    /// <summary>The node tree config.yaml is written from: every key of every section (so a run's
    /// folder says everything it used), enums as their YAML words.</summary>
    public static Dictionary<string, object?> Write(object section)
    {
        var tree = new Dictionary<string, object?>();
        foreach (var (key, prop) in Fields(section.GetType()))
        {
            object? v = prop.GetValue(section);
            if (v == null) continue;
            tree[key] = v switch
            {
                Enum e => e.ConfigWord(),
                IReadOnlyList<string> list => list.ToList(),
                IReadOnlyDictionary<string, float> map => map.ToDictionary(),
                _ when IsSection(prop.PropertyType) => Write(v),
                _ => v,
            };
        }
        return tree;
    }
}
