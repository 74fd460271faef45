using Ccr.Train.Commands;

return args.Length > 0 && args[0] == "score" ? ScoreCommand.Run(args[1..])
     : args.Length > 0 && args[0] == "model" ? ModelCommand.Run(args[1..])
     : 0;
