using Ccr.Training.Reporting.Proto;
using Google.Protobuf;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Ccr.Training.Reporting;

/// <summary>
/// One TensorBoard event file (events.out.tfevents.TIME.HOST.PID.ccr, the name TensorBoard looks
/// for) of TFRecord-framed Event messages: the version record first, then scalars, PNG images and
/// session markers. Every write is flushed, so a TensorBoard watching the folder shows the run live;
/// a process killed mid-write leaves at most a truncated last record, which readers skip.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    readonly FileStream _file;
    public string Path { get; }

    public TensorBoardWriter(string dir)
    {
        Directory.CreateDirectory(dir);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string host = new(Environment.MachineName.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
        Path = System.IO.Path.Combine(dir, $"events.out.tfevents.{now}.{host}.{Environment.ProcessId}.ccr");
        // another writer of this second and process (a test opening two runs) gets a new name
        for (int i = 2; File.Exists(Path); i++) Path = System.IO.Path.Combine(dir, $"events.out.tfevents.{now}.{host}.{Environment.ProcessId}.{i}.ccr");
        _file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Write(new Event { WallTime = WallTime(), FileVersion = "brain.Event:2" });
    }

    static double WallTime() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    void Write(Event e)
    {
        TfRecord.Write(_file, e.ToByteArray());
        _file.Flush();
    }

    /// <summary>Scalars of one step, one Summary.Value each (TensorBoard's scalar dashboard); non-finite values are kept (it draws them as such).</summary>
    public void Scalars(long step, IEnumerable<(string Tag, double Value)> values)
    {
        var s = new Summary();
        foreach (var (tag, v) in values) s.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)v });
        if (s.Value.Count > 0) Write(new Event { WallTime = WallTime(), Step = step, Summary = s });
    }

    /// <summary>An RGB picture (H, W, 3) bytes, stored as PNG (TensorBoard's image dashboard).</summary>
    public void Image(long step, string tag, byte[] rgb, int height, int width)
    {
        if (rgb.Length != height * width * 3) throw new ArgumentException($"tensorboard image '{tag}': {rgb.Length} bytes for {height}x{width}x3");
        using var img = SixLabors.ImageSharp.Image.LoadPixelData<Rgb24>(rgb, width, height);
        using var png = new MemoryStream();
        img.SaveAsPng(png);
        var v = new Summary.Types.Value
        {
            Tag = tag,
            Image = new Summary.Types.Image { Height = height, Width = width, Colorspace = 3, EncodedImageString = ByteString.CopyFrom(png.ToArray()) },
        };
        Write(new Event { WallTime = WallTime(), Step = step, Summary = new Summary { Value = { v } } });
    }

    /// <summary>A session start at <paramref name="step"/>: TensorBoard drops what earlier files of the
    /// folder logged at this step or later (a resumed run logs those steps again).</summary>
    public void SessionStart(long step) =>
        Write(new Event { WallTime = WallTime(), Step = step, SessionLog = new SessionLog { Status = SessionLog.Types.SessionStatus.Start } });

    public void Dispose() => _file.Dispose();

    /// <summary>The events of a file, every record's CRCs checked (tests, and anyone checking a run).</summary>
    public static List<Event> Read(string path) => TfRecord.ReadChecked(path).Select(Event.Parser.ParseFrom).ToList();
}
