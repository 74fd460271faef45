using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Models;
using Ccr.Training.MultiTask;


namespace Ccr.Train.Commands;

/// <summary><c>Ccr.Train model --name NAME [--size HxW] [--decoder fpn|hrnet --tasks a:K,b:K]</c>:
/// prints a model's per-stage shapes, parameter count and forward cost.</summary>
public static class ModelCommand
{
    const string Help = """
        usage: Ccr.Train model --name NAME [--size HxW] [--decoder fpn|hrnet] [--tasks NAME:K,...]
          --name     backbone: hrnet_w18_small_v2 (timm's) or hrnet_tiny (the CPU demo's)
          --size     input height x width (default 224x224)
          --decoder  add decoders: fpn (FPN 256 + Semantic FPN 128 per task, the paper's baseline) or
                     hrnet (MTI-Net's HRNet head per task); default: backbone only
          --tasks    tasks with output channels (default semseg:40,depth:1,normals:3,edge:1)
        Prints each stage's output shapes, the parameter count and the forward GMAC/GFLOP per image,
        computed from the module tree (no forward pass is run).
        """;

    public static int Run(string[] args)
    {
        string? name = null, decoder = null, tasks = "semseg:40,depth:1,normals:3,edge:1";
        int h = 224, w = 224;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--help" or "-h": Console.WriteLine(Help); return 0;
                    case "--name": name = Next(); break;
                    case "--decoder": decoder = Next(); break;
                    case "--tasks": tasks = Next(); break;
                    case "--size":
                        var p = Next().ToLowerInvariant().Split('x');
                        if (p.Length != 2 || !int.TryParse(p[0], out h) || !int.TryParse(p[1], out w) || h < 1 || w < 1)
                            throw new ArgumentException($"--size wants HxW, got '{args[i]}'");
                        break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
            catch (ArgumentException e) { Console.Error.WriteLine($"model: {e.Message}\n{Help}"); return 2; }
        }
        if (name == null) { Console.Error.WriteLine($"model: --name is required\n{Help}"); return 2; }
        try
        {
            var cfg = HrNetConfig.ByName(name);
            using var d = Device.CreateCpu(KernelVariant.Cpu);
            var rng = new Rng(0);
            if (decoder == null)
            {
                var net = new HrNet(d, rng, cfg);
                ModelSummary.Print(Console.Out, net, h, w);
                net.DisposeTensors();
                return 0;
            }
            var kind = decoder switch
            {
                "fpn" => DecoderKind.SemanticFpn,
                "hrnet" => DecoderKind.HrNetHead,
                _ => throw new ArgumentException($"unknown decoder '{decoder}' (fpn or hrnet)"),
            };
            var specs = tasks.Split(',').Select(t =>
            {
                var kv = t.Split(':');
                if (kv.Length != 2 || !int.TryParse(kv[1], out int k) || k < 1) throw new ArgumentException($"bad task '{t}' (NAME:K)");
                return new TaskSpec(kv[0], k);
            }).ToArray();
            var model = new MultiTaskModel(d, rng, cfg, kind, specs);
            ModelSummary.Print(Console.Out, model, h, w);
            model.DisposeTensors();
            return 0;
        }
        catch (ArgumentException e) { Console.Error.WriteLine($"model: {e.Message}"); return 2; }
    }
}
