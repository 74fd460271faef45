using System.Runtime.InteropServices;
using Ccr.Train.Cli;


namespace Ccr.Train.Commands;

/// <summary>
/// What makes a folder a run folder, and who may write into it. A folder holding <c>last.ckpt</c>
/// is a run to protect (a fresh <c>train</c> there is refused); one holding only the files of a
/// run that died before its first checkpoint (config.yaml, metrics.csv, ...) is a dead end that a
/// fresh run may take over, keeping those files in <c>previous-N/</c>. A running process holds an
/// exclusive lock on its folder (<see cref="RunLock"/>), so a second one is refused instead of
/// interleaving its rows and checkpoints with the first's.
/// </summary>
public static class RunFolder
{
    static readonly string[] Marks = ["last.ckpt", "best.ckpt", "metrics.csv", "config.yaml", "eval.json"];

    /// <summary>The run files <paramref name="dir"/> holds (none: free for a new run).</summary>
    public static List<string> RunFiles(string dir) =>
        Directory.Exists(dir) ? Marks.Where(m => File.Exists(Path.Combine(dir, m))).ToList() : [];

    /// <summary><paramref name="dir"/> itself when it holds no run and no process uses it, else
    /// dir-2, dir-3, ... (the demo).</summary>
    public static string Fresh(string dir)
    {
        for (int i = 1; ; i++)
        {
            string d = i == 1 ? dir : $"{dir}-{i}";
            if (RunFiles(d).Count == 0 && !RunLock.IsHeld(d)) return d;
        }
    }

    /// <summary>
    /// The early check of a fresh run (before any data or device work): <paramref name="dir"/> must
    /// not be a file, hold a <c>last.ckpt</c>, or be in use by another process. Changes nothing.
    /// </summary>
    public static void RefuseExisting(string dir, string command)
    {
        RefuseFile(dir, command);
        RefuseRun(dir, command);
        if (RunLock.IsHeld(dir)) throw RunLock.Busy(dir, command);
    }

    static void RefuseRun(string dir, string command)
    {
        if (File.Exists(Path.Combine(dir, "last.ckpt")))
            throw new UsageException($"{command}: '{dir}' already holds a run ({string.Join(", ", RunFiles(dir))}); " +
                $"continue it with --resume, or start a new run in another folder with --out DIR");
    }

    /// <summary>--out naming a file (not a folder) is a usage error.</summary>
    public static void RefuseFile(string dir, string command)
    {
        if (File.Exists(dir))
            throw new UsageException($"{command}: --out '{dir}' is a file, not a folder; name a folder for the run");
    }

    /// <summary>
    /// Takes <paramref name="dir"/> for this process: creates it, locks it for the life of the
    /// returned lock, and (for a fresh run) checks again under the lock that it holds no
    /// <c>last.ckpt</c> and moves a dead-end run's files to <c>previous-N/</c>, saying so through
    /// <paramref name="say"/>. With <paramref name="numbered"/> (the demo) a folder that another
    /// process took meanwhile is passed over for dir-2, dir-3, ...
    /// </summary>
    public static RunLock Claim(ref string dir, bool resume, bool numbered, string command, Action<string> say)
    {
        for (string baseDir = dir; ; dir = Fresh(baseDir))
        {
            RefuseFile(dir, command);
            var held = RunLock.TryAcquire(dir);
            if (held == null)
            {
                if (numbered) continue;
                throw RunLock.Busy(dir, command);
            }
            if (resume) return held;
            if (RunFiles(dir).Count > 0 && numbered) { held.Dispose(); continue; }
            try
            {
                RefuseRun(dir, command);
                KeepDeadEnd(dir, say);
            }
            catch
            {
                held.Dispose();
                throw;
            }
            return held;
        }
    }

    /// <summary>Moves the files of a run that never wrote last.ckpt into dir/previous-N/.</summary>
    static void KeepDeadEnd(string dir, Action<string> say)
    {
        var files = RunFiles(dir);
        files.AddRange(Directory.EnumerateFiles(dir, "eval-epoch*.json").Select(Path.GetFileName).OfType<string>().Order());
        if (files.Count == 0) return;
        string keep = Path.Combine(dir, "previous-1");
        for (int i = 2; Directory.Exists(keep); i++) keep = Path.Combine(dir, $"previous-{i}");
        Directory.CreateDirectory(keep);
        foreach (var f in files) File.Move(Path.Combine(dir, f), Path.Combine(keep, f));
        say($"{dir} holds no last.ckpt (a run there stopped before its first checkpoint): starting afresh; " +
            $"its {string.Join(", ", files)} moved to {keep}");
    }
}

/// <summary>
/// An exclusive lock on a run folder, held from before the first write until the process ends.
/// On Linux and macOS it is flock(2) on the folder itself: no lock file is left behind, and the
/// kernel releases it when the process dies (even by kill -9), so a stale lock never blocks. On
/// other systems it is a ".lock" file opened with FileShare.None and deleted on close.
/// </summary>
public sealed class RunLock : IDisposable
{
    int _fd = -1;
    FileStream? _file;

    RunLock(int fd, FileStream? file) { _fd = fd; _file = file; }

    /// <summary>The lock of <paramref name="dir"/> (created if missing), or null when another
    /// process (or another run in this one) holds it.</summary>
    public static RunLock? TryAcquire(string dir)
    {
        Directory.CreateDirectory(dir);
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            int fd = open(dir, 0 /* O_RDONLY */);
            if (fd < 0) throw new IOException($"{dir}: cannot open the run folder to lock it (errno {Marshal.GetLastPInvokeError()})");
            if (flock(fd, LockEx | LockNb) == 0) return new RunLock(fd, null);
            int errno = Marshal.GetLastPInvokeError();
            close(fd);
            if (errno is 11 or 35) return null; // EWOULDBLOCK (Linux, macOS)
            throw new IOException($"{dir}: cannot lock the run folder (errno {errno})");
        }
        try
        {
            return new RunLock(-1, new FileStream(Path.Combine(dir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite,
                                                  FileShare.None, 1, FileOptions.DeleteOnClose));
        }
        catch (IOException) { return null; }
    }

    /// <summary>True when another process holds the lock of <paramref name="dir"/> now (an existing
    /// folder only; nothing is created).</summary>
    public static bool IsHeld(string dir)
    {
        if (!Directory.Exists(dir)) return false;
        using var l = TryAcquire(dir);
        return l == null;
    }

    public static UsageException Busy(string dir, string command) =>
        new($"{command}: '{dir}' is in use by another running Ccr.Train process (it holds the folder's lock); " +
            "wait for it to finish, or use another folder with --out DIR");

    public void Dispose()
    {
        if (_fd >= 0) close(_fd);
        _fd = -1;
        _file?.Dispose();
        _file = null;
    }

    const int LockEx = 2, LockNb = 4;

    [DllImport("libc", SetLastError = true)]
    static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    static extern int flock(int fd, int operation);

    [DllImport("libc", SetLastError = true)]
    static extern int close(int fd);
}
