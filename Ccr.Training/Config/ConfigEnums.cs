using Ccr.Kernels;
using Ccr.Kernels.Contrastive;
using Ccr.Nn.Contrastive;

namespace Ccr.Training.Config;

/// <summary>device: where a run computes (CCR_DEVICE replaces auto).</summary>
public enum DeviceChoice { Auto, Cuda, Cpu }
/// <summary>data.dataset.</summary>
public enum DatasetKind { Synth, Nyud, Pascal }
/// <summary>model.backbone: one of Ccr.Nn's HrNetConfig.All (a test pins that each names one).</summary>
public enum BackboneKind { HrnetW18SmallV2, HrnetTiny }
/// <summary>model.head: SemanticFPN per task (the paper's baseline) or MTI-Net's HRNet head.</summary>
public enum HeadKind { Fpn, HrNet }
/// <summary>train.optimizer.</summary>
public enum OptimizerKind { Adam, AdamW, Sgd }
/// <summary>train.schedule: poly decay after warm-up, or constant after warm-up.</summary>
public enum ScheduleKind { Poly, Constant }

/// <summary>
/// The word a YAML config writes for each value of every enum a config key takes: the one table
/// that reading (<see cref="ConfigSchema"/>), writing (<see cref="ConfigLoader.ToYaml"/>), error
/// messages ("must be one of ...") and console lines share. Reading ignores case and surrounding
/// blanks (train.precision=TF32 has always worked); writing gives the lower-case word.
/// </summary>
public static class ConfigEnums
{
    static readonly Dictionary<Type, (Enum Value, string Word)[]> Words = new()
    {
        [typeof(DeviceChoice)] = [(DeviceChoice.Auto, "auto"), (DeviceChoice.Cuda, "cuda"), (DeviceChoice.Cpu, "cpu")],
        [typeof(DatasetKind)] = [(DatasetKind.Synth, "synth"), (DatasetKind.Nyud, "nyud"), (DatasetKind.Pascal, "pascal")],
        [typeof(BackboneKind)] = [(BackboneKind.HrnetW18SmallV2, "hrnet_w18_small_v2"), (BackboneKind.HrnetTiny, "hrnet_tiny")],
        [typeof(HeadKind)] = [(HeadKind.Fpn, "fpn"), (HeadKind.HrNet, "hrnet")],
        [typeof(OptimizerKind)] = [(OptimizerKind.Adam, "adam"), (OptimizerKind.AdamW, "adamw"), (OptimizerKind.Sgd, "sgd")],
        [typeof(ScheduleKind)] = [(ScheduleKind.Poly, "poly"), (ScheduleKind.Constant, "constant")],
        [typeof(MathPrecision)] = [(MathPrecision.Fp32, "fp32"), (MathPrecision.Tf32, "tf32")],
        [typeof(CcrSampling)] = [(CcrSampling.Hard, "hard"), (CcrSampling.Basic, "basic")],
        [typeof(ProjectorSharing)] =
        [
            (ProjectorSharing.SourceShared, "source"), (ProjectorSharing.Unshared, "unshared"),
            (ProjectorSharing.TargetShared, "target"), (ProjectorSharing.BothShared, "both"), (ProjectorSharing.None, "none"),
        ],
        [typeof(PairSelection)] = [(PairSelection.RandomSource, "random"), (PairSelection.AllPairs, "all")],
    };

    /// <summary>Whether <paramref name="type"/> is a config enum (has YAML words).</summary>
    public static bool IsConfigEnum(Type type) => Words.ContainsKey(type);

    /// <summary>The YAML words of an enum's values, in the order error messages list them.</summary>
    public static IEnumerable<string> WordsOf(Type type) => Words[type].Select(w => w.Word);

    /// <summary>The YAML word of a value: <c>MathPrecision.Tf32.ConfigWord()</c> is "tf32".</summary>
    public static string ConfigWord(this Enum value) =>
        Words[value.GetType()].First(w => w.Value.Equals(value)).Word;

    /// <summary>The value a YAML word names (any case, blanks trimmed), or null.</summary>
    public static Enum? Parse(Type type, string word)
    {
        string w = word.Trim();
        foreach (var (value, name) in Words[type])
            if (string.Equals(name, w, StringComparison.OrdinalIgnoreCase)) return value;
        return null;
    }
}
