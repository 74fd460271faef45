using Ccr.Nn;
using Ccr.Nn.IO;
using Ccr.Train.Cli;
using Ccr.Training.Data;

using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary>The process exit codes (docs/guide/ERRORS.md lists them with what each error means).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A dataset, label or image file is missing, truncated or unreadable.</summary>
    public const int DataError = 1;
    /// <summary>Bad command line or config: unknown option or key, YAML syntax, out-of-range value,
    /// a run folder that already holds a run, a missing input file named on the command line.</summary>
    public const int Usage = 2;
    /// <summary>Out of device (or host) memory.</summary>
    public const int OutOfMemory = 3;
    /// <summary>Training diverged: a non-finite loss, gradient or batch-norm statistic.</summary>
    public const int Diverged = 4;
    /// <summary>A checkpoint is missing, truncated, not a Ccr checkpoint, of another model, or non-finite.</summary>
    public const int BadCheckpoint = 5;
    /// <summary>A file could not be written or read: full disk, no permission, read-only file system.</summary>
    public const int IoError = 6;
    /// <summary>A data-parallel run failed between ranks: a collective timed out, the ranks' parameters differ.</summary>
    public const int DistributedFailure = 7;
    /// <summary>A bug: printed with its stack trace (EX_SOFTWARE).</summary>
    public const int InternalError = 70;
    /// <summary>Stopped by Ctrl-C (128 + SIGINT) after writing last.ckpt.</summary>
    public const int Interrupted = 130;
    /// <summary>Stopped by SIGTERM (128 + SIGTERM) after writing last.ckpt.</summary>
    public const int Terminated = 143;
}

/// <summary>
/// The command dispatcher behind Program.cs, and the one place where an exception becomes a
/// message and an exit code: each user-facing error prints one line on stderr (no stack trace),
/// naming the file or config key; only a bug (an exception nobody expected) prints a trace.
/// </summary>
public static class Entry
{
    public static int Run(string[] args)
    {
        string command = args.Length == 0 ? "demo" : args[0];
        // [distributed] a rank's stdout may be the launcher's pseudo-terminal although it ends in a log
        // file: no terminal control sequences from any rank
        if (Training.DataParallel.Launcher.UnderMpirun) Environment.SetEnvironmentVariable("TERM", "dumb");
        try
        {
            // [distributed] only train and eval know how to share the work of several ranks
            if (Training.DataParallel.Launcher.UnderMpirun && (args.Length == 0 || args[0] is not ("train" or "eval" or "--help" or "-h" or "help")))
                throw new UsageException($"under mpirun only 'train' and 'eval' run data-parallel; run '{(args.Length > 0 ? args[0] : "demo")}' as one process");
            if (args.Length == 0) return DemoCommand.Run([]);
            return args[0] switch
            {
                "train" => TrainCommand.Run(args[1..]),
                "eval" => EvalCommand.Run(args[1..]),
                "infer" => InferCommand.Run(args[1..]),
                "export" => ExportCommand.Run(args[1..]),
                "ablate" => AblateCommand.Run(args[1..]),
                "score" => ScoreCommand.Run(args[1..]),
                "model" => ModelCommand.Run(args[1..]),
                "demo" => DemoCommand.Run(args[1..]),
                "--help" or "-h" or "help" => Help(),
                _ => throw new UsageException($"unknown command '{args[0]}'. Commands: demo, train, eval, infer, export, ablate, score, model (each takes --help)"),
            };
        }
        catch (Exception e)
        {
            var (code, message) = Describe(e, command);
            Console.Out.Flush();
            // [distributed] an error before the ranks connect (a config error) is printed by every rank: say which
            if (Training.DataParallel.Launcher.Current is { } ranks) message = $"rank {ranks.Rank} of {ranks.Size}: {message}";
            Console.Error.WriteLine(message);
            return code;
        }
    }

    /// <summary>The exit code and the message of an exception that ended <paramref name="command"/>.</summary>
    public static (int Code, string Message) Describe(Exception e, string command)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        string Line(string s) => s.ReplaceLineEndings(" ").Trim();
        bool trains = command is "train" or "demo" or "ablate";
        return e switch
        {
            UsageException or ConfigException => (ExitCodes.Usage, Line(e.Message)),
            DataFileException => (ExitCodes.DataError, $"data error: {Line(e.Message)}" +
                (trains ? " (--set data.skip_bad=true skips bad samples)" : "")),
            NonFiniteException => (ExitCodes.Diverged, $"stopped: {Line(e.Message)}"),
            CheckpointException or StateDictException => (ExitCodes.BadCheckpoint, $"checkpoint error: {Line(e.Message)}"),
            OutOfMemoryException => (ExitCodes.OutOfMemory, $"out of memory: {Line(e.Message)}"),
            IOException or UnauthorizedAccessException => (ExitCodes.IoError, $"I/O error: {Line(e.Message)}"),
            Nn.Distributed.DistributedException => (ExitCodes.DistributedFailure, Line(e.Message)),
            InvalidDataException => (ExitCodes.DataError, $"data error: {Line(e.Message)}"),
            _ => (ExitCodes.InternalError, $"internal error (a bug; please report it with this trace): {e}"),
        };
    }

    static int Help()
    {
        Console.WriteLine("""
            Ccr.Train: multi-task dense prediction with cross-task contrastive regularisation (AAAI 2023)

            usage: Ccr.Train [command] [options]

              (none) | demo  train and evaluate on the built-in SynthRooms data (GPU preset if a CUDA device exists, else CPU)
              train          train from a YAML config (--config FILE|preset, --set key=value, --out DIR, --resume)
              eval           evaluate a checkpoint on a dataset split, optionally saving predictions
              infer          colourised predictions of every task for a folder of images (ours or an ONNX export's)
              export         the trained network without the regulariser as an ONNX model, checked under ONNX Runtime
              ablate         the paper's ablations (Tables 1 and 3, the k / gamma sweep) as Markdown and JSON
              score          score saved predictions against a dataset (no MATLAB)
              model          print a model's stages, parameter count and GFLOP

            Every command takes --help. Exit codes: 0 done, 1 data error, 2 usage or config error,
            3 out of memory, 4 training diverged, 5 unusable checkpoint, 6 I/O error (e.g. full disk), 7 a data-parallel run failed,
            130 / 143 stopped by Ctrl-C / SIGTERM (last.ckpt written), 70 internal error. See docs/guide/ERRORS.md.
            """);
        return 0;
    }
}
