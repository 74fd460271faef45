using Microsoft.ML.OnnxRuntime;

namespace Ccr.Training.Export;

/// <summary>
/// An exported model under ONNX Runtime's CPU execution provider, loaded at its strictest: shape
/// and type inference failures are errors (session.strict_shape_type_inference) and only released
/// opsets are accepted. Tasks and normalisation come from the model's metadata (ccr.tasks,
/// ccr.outputs), so any Ccr export runs without its checkpoint.
/// </summary>
public sealed class OnnxRunner : IDisposable
{
    readonly InferenceSession _session;
    public IReadOnlyList<string> Tasks { get; }
    public IReadOnlyList<string> Outputs { get; }
    public string InputName { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <param name="threads">intra-op threads (0: ONNX Runtime's default, one per core).</param>
    /// <param name="optimize">false: the graph runs as written (no fusions), to check the export itself.</param>
    public OnnxRunner(string path, int threads = 0, bool optimize = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model '{path}' does not exist", path);
        using var so = new SessionOptions
        {
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        so.AddSessionConfigEntry("session.strict_shape_type_inference", "1");
        so.AddSessionConfigEntry("session.allow_released_opsets_only", "1");
        try { _session = new InferenceSession(path, so); }
        catch (OnnxRuntimeException e) { throw new InvalidDataException($"ONNX Runtime rejected '{path}': {e.Message}", e); }
        Metadata = _session.ModelMetadata.CustomMetadataMap;
        if (!Metadata.TryGetValue("ccr.tasks", out var tasks) || !Metadata.TryGetValue("ccr.outputs", out var outs))
        {
            _session.Dispose();
            throw new InvalidDataException($"'{path}' is not a Ccr export: its metadata has no ccr.tasks / ccr.outputs");
        }
        Tasks = tasks.Split(',');
        Outputs = outs.Split(',');
        InputName = _session.InputMetadata.Keys.Single();
        var dims = _session.InputMetadata[InputName].Dimensions;
        if (dims.Length == 4 && dims[2] > 0 && dims[3] > 0) FixedSize = (dims[0], dims[2], dims[3]);
    }

    /// <summary>(N, H, W) of a fixed-size export; null when height and width are symbolic (--dynamic).</summary>
    public (int N, int H, int W)? FixedSize { get; }

    /// <summary>x (N, 3, H, W) normalised → per task its output (N, K, H, W) and that shape.</summary>
    public Dictionary<string, (float[] Data, int[] Shape)> Run(float[] x, int n, int h, int w)
    {
        if (x.Length != n * 3 * h * w) throw new ArgumentException($"onnx run: {x.Length} values for an input of (N={n}, 3, {h}, {w})");
        using var input = OrtValue.CreateTensorValueFromMemory(x, [n, 3, h, w]);
        using var ro = new RunOptions();
        using var results = _session.Run(ro, [InputName], [input], Outputs.ToArray());
        var r = new Dictionary<string, (float[], int[])>();
        for (int i = 0; i < Outputs.Count; i++)
        {
            var v = results[i];
            var shape = v.GetTensorTypeAndShape().Shape.Select(d => (int)d).ToArray();
            r[Tasks[i]] = (v.GetTensorDataAsSpan<float>().ToArray(), shape);
        }
        return r;
    }

    public void Dispose() => _session.Dispose();
}
