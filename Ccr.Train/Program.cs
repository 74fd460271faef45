using Ccr.Train.Commands;

// Minimal dispatch; the full command line (train, eval, infer, ablate) is wired by the trainer.
return args.Length > 0 && args[0] == "score"
    ? ScoreCommand.Run(args[1..])
    : Default();

static int Default()
{
    Console.WriteLine("Ccr.Train");
    return 0;
}
