using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Models;
using Ccr.Training.Export;
using Ccr.Training.MultiTask;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// Inference on the CPU: our eval forward (CPU accelerator, CPU kernel variants; pad to 32, network,
/// crop, outputs read back) against ONNX Runtime's CPU execution provider (MLAS kernels, full graph
/// optimisation) running the export of the same network: same batch (1), same image size, the same
/// number of threads (ours uses one per core; ONNX Runtime is given as many intra-op threads), both
/// returning every task's output as host arrays. <c>demo</c> is the CPU demo's network (HRNet-tiny,
/// HRNet heads, semseg / depth / normals) at its 48x64; <c>paper</c> is HRNet-W18-small-v2 + FPN 256 /
/// Semantic FPN 128 with NYUD's four tasks at 480x640. Weights are random (the time does not depend
/// on them). Run: <c>Ccr.Bench --filter '*OnnxInference*'</c>; a quick functional pass: add <c>--job Dry</c>.
/// </summary>
public class OnnxInferenceBenchmarks
{
    [Params("demo", "paper")]
    public string Model { get; set; } = "demo";

    Device _d = null!;
    MultiTaskModel _model = null!;
    OnnxRunner _ort = null!;
    float[] _x = [];
    int _h, _w;
    string _path = "";

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.CreateCpu();
        var rng = new Rng(1, 1);
        (_model, _h, _w) = Model == "demo"
            ? (new MultiTaskModel(_d, rng, HrNetConfig.Tiny, DecoderKind.HrNetHead, [new("semseg", 10), new("depth", 1), new("normals", 3)]), 48, 64)
            : (new MultiTaskModel(_d, rng, HrNetConfig.W18SmallV2, DecoderKind.SemanticFpn,
                                  [new("semseg", 40), new("depth", 1), new("normals", 3), new("edge", 1)]), 480, 640);
        _model.Eval();
        _path = Path.Combine(Path.GetTempPath(), $"ccr-bench-{Model}-{Environment.ProcessId}.onnx");
        OnnxExporter.Save(OnnxExporter.Export(_model, new OnnxExportOptions(Height: _h, Width: _w)), _path);
        int threads = Environment.ProcessorCount;
        _ort = new OnnxRunner(_path, threads: threads);
        _x = OnnxParity.RandomImage(1, _h, _w, seed: 1);
        var diffs = OnnxParity.Compare(_model, _d, _ort, _x, 1, _h, _w); // also warms both up
        Console.WriteLine($"// {Model} {_h}x{_w}, {threads} threads each; max relative difference " +
                          $"{diffs.Max(d => d.Relative):G3} ({string.Join(", ", diffs.Select(d => d.Task))})");
    }

    [Benchmark(Baseline = true)]
    public Dictionary<string, float[]> Ours() => OnnxParity.Ours(_model, _d, _x, 1, _h, _w);

    [Benchmark]
    public Dictionary<string, (float[] Data, int[] Shape)> OnnxRuntime() => _ort.Run(_x, 1, _h, _w);

    [GlobalCleanup]
    public void Cleanup()
    {
        _ort.Dispose();
        _model.DisposeTensors();
        _d.Dispose();
        File.Delete(_path);
    }
}
