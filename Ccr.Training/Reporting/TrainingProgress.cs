using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Ccr.Training.Reporting;

/// <summary>
/// The trainer's progress on the terminal. On an interactive terminal a live Spectre.Console
/// display (step, epoch, a progress bar, the losses, images/s, ETA) is redrawn in place and
/// messages scroll above it. When the output is redirected, TERM is unset or "dumb", or CI is set,
/// it prints plain lines instead: exactly one line per <see cref="Update"/> or
/// <see cref="Message"/> call, so logs and pipes read as before.
/// </summary>
/// <remarks>
/// Spectre's live display is not thread-safe and owns the console while it runs, so one
/// background thread runs it and every write (updates and messages) goes through its queue;
/// callers never block on rendering. <see cref="Dispose"/> drains the queue and leaves the last
/// frame on screen.
/// </remarks>
public sealed class TrainingProgress : IDisposable
{
    readonly TextWriter _plain;
    readonly IAnsiConsole? _console;
    readonly BlockingCollection<object>? _queue;
    readonly Thread? _thread;
    volatile bool _liveFailed;
    bool _disposed;

    /// <summary>True while the live display is in use (false: plain lines).</summary>
    public bool IsLive => _queue != null && !_liveFailed;

    /// <param name="writer">Where plain lines go (default Console.Out); with <paramref name="live"/>
    /// true it is also where the live display is drawn (tests).</param>
    /// <param name="live">Force the mode; null decides by <see cref="TerminalIsInteractive"/>
    /// (and is plain whenever a writer is given).</param>
    public TrainingProgress(TextWriter? writer = null, bool? live = null)
    {
        _plain = writer ?? Console.Out;
        bool useLive = live ?? (writer == null && TerminalIsInteractive());
        if (!useLive) return;
        _console = writer == null ? AnsiConsole.Console : AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.Standard,
            Interactive = InteractionSupport.Yes,
        });
        _queue = new BlockingCollection<object>();
        _thread = new Thread(LiveLoop) { IsBackground = true, Name = "TrainingProgress" };
        _thread.Start();
    }

    /// <summary>
    /// True when stdout is a terminal that can redraw: not redirected, TERM set and not "dumb",
    /// and not under CI (CI=true), whose log viewers show every redraw as a new line.
    /// </summary>
    public static bool TerminalIsInteractive()
    {
        if (Console.IsOutputRedirected) return false;
        var term = Environment.GetEnvironmentVariable("TERM");
        if (string.IsNullOrEmpty(term) || term == "dumb") return false;
        var ci = Environment.GetEnvironmentVariable("CI");
        return string.IsNullOrEmpty(ci) || ci.Equals("false", StringComparison.OrdinalIgnoreCase) || ci == "0";
    }

    /// <summary>
    /// One logged step: <paramref name="row"/> is the metrics.csv row (loss, loss_*, ccr, lr,
    /// images_per_s; missing keys are left out), <paramref name="epoch"/> is shown as given (1-based).
    /// </summary>
    public void Update(long step, long total, int epoch, IReadOnlyDictionary<string, double> row, double etaSeconds)
    {
        if (IsLive) { Post(Frame(step, total, epoch, row, etaSeconds)); return; }
        WritePlain(PlainLine(step, total, epoch, row, etaSeconds));
    }

    /// <summary>A line of text (evaluation results, checkpoint written...): one line in plain mode,
    /// a line above the live display otherwise.</summary>
    public void Message(string text)
    {
        if (IsLive) { Post(text); return; }
        WritePlain(text);
    }

    /// <summary>The plain-mode line, as the trainer has always printed it.</summary>
    public static string PlainLine(long step, long total, int epoch, IReadOnlyDictionary<string, double> row, double etaSeconds)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(ci, $"step {step}/{total} epoch {epoch}");
        if (row.TryGetValue("loss", out var loss)) sb.Append(ci, $" loss {loss:F4}");
        if (row.TryGetValue("ccr", out var ccr)) sb.Append(ci, $" ccr {ccr:F4}");
        if (row.TryGetValue("lr", out var lr)) sb.Append(ci, $" lr {lr:E2}");
        if (row.TryGetValue("images_per_s", out var ips)) sb.Append(ci, $" {ips:F1} img/s");
        sb.Append(" eta ").Append(Eta(etaSeconds));
        return sb.ToString();
    }

    /// <summary>mm:ss, or h:mm:ss from an hour on; "?" when unknown.</summary>
    public static string Eta(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes:D2}:{t.Seconds:D2}");
    }

    void WritePlain(string line)
    {
        lock (_plain) { _plain.WriteLine(line); _plain.Flush(); }
    }

    void Post(object item)
    {
        try { _queue!.Add(item); }
        catch (InvalidOperationException) { if (item is string s) WritePlain(s); } // added after Dispose
    }

    static IRenderable Frame(long step, long total, int epoch, IReadOnlyDictionary<string, double> row, double etaSeconds)
    {
        var ci = CultureInfo.InvariantCulture;
        double frac = total > 0 ? Math.Clamp((double)step / total, 0, 1) : 0;
        const int barWidth = 20; // the head line fits 80 columns
        int filled = (int)Math.Round(frac * barWidth);
        string ips = row.TryGetValue("images_per_s", out var v) ? string.Create(ci, $"  {v:F1} img/s") : "";
        var head = new Markup(string.Create(ci,
            $"[bold]step {step}/{total}[/]  epoch {epoch}  [green]{new string('━', filled)}[/][grey]{new string('━', barWidth - filled)}[/] {frac * 100,5:F1}%{ips}  eta {Eta(etaSeconds)}"));

        var keys = row.Keys.Where(k => k == "loss" || k == "ccr" || k.StartsWith("loss_", StringComparison.Ordinal) || k == "lr").ToList();
        if (keys.Count == 0) return head;
        var table = new Table().Border(TableBorder.Simple);
        foreach (var k in keys) table.AddColumn(new TableColumn(Markup.Escape(k)).RightAligned());
        table.AddRow(keys.Select(k => Markup.Escape(k == "lr" ? row[k].ToString("E2", ci) : row[k].ToString("F4", ci))).ToArray());
        return new Rows(head, table);
    }

    void LiveLoop()
    {
        try
        {
            var console = _console!;
            console.Live(new Markup("[grey]starting...[/]"))
                .AutoClear(false)
                .Overflow(VerticalOverflow.Ellipsis)
                .Start(ctx =>
                {
                    foreach (var item in _queue!.GetConsumingEnumerable())
                    {
                        if (item is string s) console.WriteLine(s); // printed above the live frame
                        else if (item is IRenderable r) ctx.UpdateTarget(r);
                        ctx.Refresh();
                    }
                });
        }
        catch (Exception e)
        {
            // A terminal Spectre cannot drive (or another live display running): go plain for
            // the rest of the run and keep the messages still queued.
            _liveFailed = true;
            WritePlain($"progress: live display unavailable ({e.GetType().Name}: {e.Message}); printing lines");
            foreach (var item in _queue!.GetConsumingEnumerable())
                if (item is string s) WritePlain(s);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_queue == null) return;
        _queue.CompleteAdding();
        _thread!.Join();
        _queue.Dispose();
    }
}
