if (args.Length > 0 && args[0] == "model") return Ccr.Train.Commands.ModelCommand.Run(args[1..]);
Console.WriteLine("Ccr.Train");
return 0;
