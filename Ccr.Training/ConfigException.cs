namespace Ccr.Training;

/// <summary>
/// The library was asked for something it cannot do as asked: an unknown config key, a value out of
/// range, a YAML syntax error, a preset or an input file (pretrained weights, a baseline eval file)
/// that the config or the caller names but that does not exist or does not fit. The message is one
/// line that names the key or the file. The CLI maps it to exit code 2, like its own usage errors.
/// </summary>
public sealed class ConfigException(string message) : Exception(message);
