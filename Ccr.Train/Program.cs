Console.WriteLine("Ccr.Train");
