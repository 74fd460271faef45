using Ccr.Nn.IO;
using Ccr.Nn.Models;
using Ccr.Training.Config;

namespace Ccr.Training.MultiTask;

/// <summary>
/// ImageNet weights of the backbone, as <c>model.pretrained</c> asks for them:
/// <list type="bullet">
/// <item><c>timm</c>: timm's own file where timm users already have it, the Hugging Face cache:
/// <c>models--timm--&lt;model&gt;/snapshots/*/model.safetensors</c> under $HF_HUB_CACHE (or the
/// older $HUGGINGFACE_HUB_CACHE), $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub or
/// ~/.cache/huggingface/hub, the snapshot that refs/main names first. Not found: a usage error that
/// says how to get it, how to give a file, and how to train from scratch on purpose.</item>
/// <item>a path: that safetensors file (timm names; a classifier checkpoint is fine, its head keys
/// are left unused).</item>
/// <item><c>none</c>, or empty: no pretrained weights (training from scratch).</item>
/// </list>
/// A file must fit: every parameter and buffer of the backbone present with its shape (only
/// BatchNorm's num_batches_tracked may be absent), else nothing is loaded and the error names the file
/// and what matched. What was loaded is said in one line at start.
/// </summary>
public static class PretrainedWeights
{
    public const string Timm = "timm";
    public const string None = "none";

    /// <summary>The Hugging Face repository of timm's weights for each backbone that has them.</summary>
    public static readonly IReadOnlyDictionary<BackboneKind, string> TimmRepos = new Dictionary<BackboneKind, string>
    {
        [BackboneKind.HrnetW18SmallV2] = "timm/hrnet_w18_small_v2.ms_in1k",
    };

    /// <summary>The weights file that the config asks for, or null for none; throws <see cref="ConfigException"/>
    /// with directions when it cannot be found. <paramref name="env"/> reads environment variables (tests pass their own).</summary>
    public static string? Resolve(ModelConfig m, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        string p = m.Pretrained.Trim();
        if (p.Length == 0 || p == None) return null;
        if (p != Timm)
        {
            if (!File.Exists(p))
                throw new ConfigException($"model.pretrained: '{p}' does not exist. Give a safetensors file of timm's {m.Backbone.ConfigWord()} " +
                    $"weights (docs/guide/WEIGHTS.md), 'timm' to find them in the Hugging Face cache, or 'none' to train from scratch.");
            return p;
        }
        if (!TimmRepos.TryGetValue(m.Backbone, out var repo))
            throw new ConfigException($"model.pretrained=timm: timm has no weights for backbone '{m.Backbone.ConfigWord()}' " +
                $"(it has: {string.Join(", ", TimmRepos.Keys.Select(k => k.ConfigWord()))}); set model.pretrained=none to train it from scratch.");
        var dirs = HubDirs(env).ToList();
        foreach (string hub in dirs)
            if (FindInHub(hub, repo) is string f) return f;
        string cacheName = "models--" + repo.Replace("/", "--");
        throw new ConfigException(
            $"model.pretrained=timm: timm's ImageNet weights of {m.Backbone.ConfigWord()} ({repo}) are not in the Hugging Face cache " +
            $"(looked for {cacheName}/snapshots/*/model.safetensors in {string.Join(", ", dirs)}).\n" +
            $"  get them once with timm:          python -c \"import timm; timm.create_model('{repo["timm/".Length..]}', pretrained=True)\"\n" +
            $"  or with huggingface_hub:          huggingface-cli download {repo} model.safetensors\n" +
            "  or point at a file:               --set model.pretrained=PATH/TO/model.safetensors   (docs/guide/WEIGHTS.md)\n" +
            "  or train from scratch on purpose: --set model.pretrained=none");
    }

    /// <summary>Hub cache folders in the order huggingface_hub uses them.</summary>
    public static IEnumerable<string> HubDirs(Func<string, string?> env)
    {
        string? V(string k) => env(k) is string s && s.Length > 0 ? s : null;
        var seen = new HashSet<string>();
        IEnumerable<string?> All()
        {
            yield return V("HF_HUB_CACHE");
            yield return V("HUGGINGFACE_HUB_CACHE");
            if (V("HF_HOME") is string home) yield return Path.Combine(home, "hub");
            if (V("XDG_CACHE_HOME") is string xdg) yield return Path.Combine(xdg, "huggingface", "hub");
            string? user = V("HOME") ?? V("USERPROFILE");
            if (user != null) yield return Path.Combine(user, ".cache", "huggingface", "hub");
        }
        foreach (var d in All())
            if (d != null && seen.Add(d)) yield return d;
    }

    /// <summary>model.safetensors of the snapshot refs/main names, else of the newest snapshot.</summary>
    static string? FindInHub(string hub, string repo)
    {
        string root = Path.Combine(hub, "models--" + repo.Replace("/", "--"));
        string snapshots = Path.Combine(root, "snapshots");
        if (!Directory.Exists(snapshots)) return null;
        string refMain = Path.Combine(root, "refs", "main");
        if (File.Exists(refMain))
        {
            string f = Path.Combine(snapshots, File.ReadAllText(refMain).Trim(), "model.safetensors");
            if (File.Exists(f)) return f;
        }
        return Directory.GetDirectories(snapshots)
            .Select(d => Path.Combine(d, "model.safetensors"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }

    /// <summary>Loads <paramref name="path"/> into the backbone and returns the line to print; throws
    /// <see cref="ConfigException"/> naming the file when it does not fit.</summary>
    public static string Load(HrNet backbone, string path)
    {
        LoadReport report;
        bool ok;
        Action apply;
        try { (report, ok, apply) = StateDict.Plan(backbone, SafeTensors.Read(path).Tensors, path, strict: false); }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or ArgumentException or StateDictException)
        {
            throw new ConfigException($"model.pretrained: {path} is not a readable safetensors file ({e.Message})");
        }
        var entries = StateDict.Entries(backbone);
        int needed = entries.Count(e => e.Kind != StateKind.NumBatchesTracked);
        var missing = report.Missing.Where(n => !n.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        int matched = report.Loaded.Count(n => !n.EndsWith(".num_batches_tracked", StringComparison.Ordinal));
        if (!ok || missing.Count > 0)
            throw new ConfigException(
                $"model.pretrained: {path} does not fit the {backbone.Config.Name} backbone: {matched} of {needed} tensors match" +
                (missing.Count > 0 ? $"; missing {missing.Count} (e.g. {string.Join(", ", missing.Take(3))})" : "") +
                (report.Mismatched.Count > 0 ? $"; wrong shape or dtype {report.Mismatched.Count} (e.g. {string.Join(", ", report.Mismatched.Take(3))})" : "") +
                $". Is it timm's {backbone.Config.Name}? Nothing was loaded.");
        apply();
        return $"pretrained backbone: {path}: {matched} of {needed} tensors loaded" +
               (report.Unexpected.Count > 0 ? $", {report.Unexpected.Count} tensors of the file unused (e.g. {string.Join(", ", report.Unexpected.Take(2))})" : "");
    }
}
