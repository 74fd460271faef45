// Ccr.Train [command] [options]; no command runs the demo. Every command documents --help; the
// exit codes are listed in docs/guide/ERRORS.md (Commands/Entry.cs maps each error to one).
return Ccr.Train.Commands.Entry.Run(args);
