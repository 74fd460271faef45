using Ccr.Nn;
using Ccr.Train.Cli;
using Ccr.Train.Commands;

// Ccr.Train [command] [options]; no command runs the demo. Every command documents --help.
try
{
    // [distributed] only train and eval know how to share the work of several ranks
    if (Ccr.Train.Distributed.Launcher.UnderMpirun && (args.Length == 0 || args[0] is not ("train" or "eval" or "--help" or "-h" or "help")))
        throw new UsageException($"under mpirun only 'train' and 'eval' run data-parallel; run '{(args.Length > 0 ? args[0] : "demo")}' as one process");
    if (args.Length == 0) return DemoCommand.Run([]);
    return args[0] switch
    {
        "train" => TrainCommand.Run(args[1..]),
        "eval" => EvalCommand.Run(args[1..]),
        "infer" => InferCommand.Run(args[1..]),
        "ablate" => AblateCommand.Run(args[1..]),
        "score" => ScoreCommand.Run(args[1..]),
        "model" => ModelCommand.Run(args[1..]),
        "demo" => DemoCommand.Run(args[1..]),
        "--help" or "-h" or "help" => Help(),
        _ => throw new UsageException($"unknown command '{args[0]}'. Commands: demo, train, eval, infer, ablate, score, model (each takes --help)"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
catch (NonFiniteException e)
{
    Console.Error.WriteLine($"stopped: {e.Message}");
    return 4;
}

static int Help()
{
    Console.WriteLine("""
        Ccr.Train: multi-task dense prediction with cross-task contrastive regularisation (AAAI 2023)

        usage: Ccr.Train [command] [options]

          (none) | demo  train and evaluate on the built-in SynthRooms data (GPU preset if a CUDA device exists, else CPU)
          train          train from a YAML config (--config FILE|preset, --set key=value, --out DIR, --resume)
          eval           evaluate a checkpoint on a dataset split, optionally saving predictions
          infer          colourised predictions of every task for a folder of images
          ablate         the paper's ablations (Tables 1 and 3, the k / gamma sweep) as Markdown and JSON
          score          score saved predictions against a dataset (no MATLAB)
          model          print a model's stages, parameter count and GFLOP

        Every command takes --help.
        """);
    return 0;
}
