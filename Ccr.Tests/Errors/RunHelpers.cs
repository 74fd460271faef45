using Ccr.Train.Commands;
using Ccr.Tests.Data;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>Runs the command line in-process (what Program.cs runs) and captures what it prints.</summary>
public static class Cli
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var oldOut = Console.Out; var oldErr = Console.Error;
        var o = new StringWriter(); var e = new StringWriter();
        Console.SetOut(o); Console.SetError(e);
        try { return (Entry.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    /// <summary>The exit code is <paramref name="code"/> and stderr is one line (no stack trace) that
    /// contains every one of <paramref name="parts"/>; returns that line.</summary>
    public static string AssertError((int Code, string Out, string Err) r, int code, params string[] parts)
    {
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(r.Code == code, $"exit code {r.Code}, expected {code}; stderr: {r.Err}");
        Assert.True(lines.Length >= 1, "nothing on stderr");
        string last = lines[^1];
        Assert.DoesNotContain(" at Ccr.", r.Err); // no stack trace
        foreach (var p in parts) Assert.True(last.Contains(p), $"'{p}' not in: {last}");
        return last;
    }
}

/// <summary>Scratch folders of one test class, deleted with it.</summary>
public sealed class Scratch : IDisposable
{
    readonly List<string> _dirs = new();

    public string Dir(string tag)
    {
        string d = TestData.TempDir(tag);
        lock (_dirs) _dirs.Add(d);
        return d;
    }

    public void Dispose()
    {
        foreach (var d in _dirs)
            try { Directory.Delete(d, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}

/// <summary>Tiny SynthRooms runs (32x32, 12 training images, batch 3: 4 steps per epoch) on the CPU.</summary>
public static class Tiny
{
    public static string[] Sets(string data, params string[] more) =>
    [
        "data.path=" + data, "data.train_size=12", "data.val_size=3", "data.height=32", "data.width=32",
        "data.crop_height=32", "data.crop_width=32", "data.workers=1", "device=cpu",
        "train.batch_size=3", "train.epochs=1", "train.eval_every=0", "train.log_every=1",
        "ccr.top_k=8", "ccr.proj_dim=8", "model.head_channels=8", .. more,
    ];

    /// <summary>"train --config synth-cpu --out DIR --set ..." with the tiny settings.</summary>
    public static string[] Train(string data, string run, params string[] more)
    {
        var a = new List<string> { "train", "--config", "synth-cpu", "--out", run };
        foreach (var s in Sets(data, more)) { a.Add("--set"); a.Add(s); }
        return a.ToArray();
    }

    /// <summary>Every file under <paramref name="dir"/> with its bytes (to prove nothing changed).</summary>
    public static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes)
            : new();

    public static void AssertUnchanged(Dictionary<string, byte[]> before, string dir)
    {
        var after = Snapshot(dir);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (k, v) in before) Assert.True(v.AsSpan().SequenceEqual(after[k]), $"{k} changed");
    }
}

/// <summary>One finished tiny run (one epoch, last.ckpt, eval.json), made once and shared read-only;
/// a test that damages files works on a copy (<see cref="CopyRun"/>).</summary>
public sealed class TrainedRun : IDisposable
{
    public string Root { get; } = TestData.TempDir("trained-run");
    public string Data => Path.Combine(Root, "data");
    public string Run => Path.Combine(Root, "run");
    public string Ckpt => Path.Combine(Run, "last.ckpt");
    /// <summary>The SynthRooms images of the run's data.</summary>
    public string Images => Path.Combine(Directory.GetDirectories(Data).Single(), "images");

    public TrainedRun()
    {
        var r = Cli.Run(Tiny.Train(Data, Run));
        Assert.True(r.Code == 0, r.Err);
    }

    readonly Scratch _copies = new();

    public string CopyRun()
    {
        string dst = _copies.Dir("run-copy");
        foreach (var f in Directory.GetFiles(Run)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    public void Dispose()
    {
        _copies.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
