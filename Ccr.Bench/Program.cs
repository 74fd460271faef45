Console.WriteLine("Ccr.Bench");
