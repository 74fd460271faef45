namespace Ccr.Train.Data;

/// <summary>Opens a dataset from a "kind:PATH" spec (nyud:PATH, pascal:PATH, synth:PATH).</summary>
public static class DatasetSpec
{
    public static IDataset Open(string spec, string split, IEnumerable<string>? tasks = null,
        BadSamplePolicy policy = BadSamplePolicy.Stop)
    {
        int colon = spec.IndexOf(':');
        if (colon <= 0 || colon == spec.Length - 1)
            throw new ArgumentException($"dataset spec '{spec}' must be nyud:PATH, pascal:PATH or synth:PATH");
        string kind = spec[..colon], path = spec[(colon + 1)..];
        return kind switch
        {
            "nyud" => new NyudDataset(path, split, tasks, policy),
            "pascal" => new PascalDataset(path, split, tasks, policy),
            "synth" => SynthRooms.Open(path, split, tasks, policy),
            _ => throw new ArgumentException($"unknown dataset kind '{kind}' in '{spec}' (nyud, pascal, synth)"),
        };
    }
}
