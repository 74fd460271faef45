using System.Reflection;
using Ccr.Kernels;

namespace Ccr.Bench.Report;

/// <summary>
/// fp32 / TF32 for the report's rows. The switch itself (<c>Device.Precision</c>, an enum with
/// Fp32 and Tf32, and the config key <c>train.precision</c>) is added by the implicit-GEMM work of
/// issue 11 on its own branch; the report is written before that lands, so it looks the property
/// up by name: in a build without it the TF32 rows say "not available in this build" instead of
/// timing fp32 twice. Once the property is on main this can become a plain assignment.
/// </summary>
public static class PrecisionSwitch
{
    static readonly PropertyInfo? Property = typeof(Device).GetProperty("Precision", BindingFlags.Public | BindingFlags.Instance);

    public const string NotAvailable = "not available in this build";

    /// <summary>True when this build can run the GEMMs and convolutions in TF32.</summary>
    public static bool Tf32Available =>
        Property is { CanWrite: true } p && p.PropertyType.IsEnum &&
        Enum.GetNames(p.PropertyType).Any(n => n.Equals("tf32", StringComparison.OrdinalIgnoreCase));

    public static bool IsAvailable(string precision) => precision == "fp32" || precision == "tf32" && Tf32Available;

    /// <summary>Sets <paramref name="d"/>'s precision ("fp32" or "tf32"). fp32 is a no-op in a build
    /// without the switch (everything is fp32 there).</summary>
    public static void Set(Device d, string precision)
    {
        if (precision is not ("fp32" or "tf32")) throw new ArgumentException($"precision must be fp32 or tf32, got '{precision}'");
        if (!Tf32Available)
        {
            if (precision == "tf32") throw new NotSupportedException("TF32: " + NotAvailable);
            return;
        }
        Property!.SetValue(d, Enum.Parse(Property.PropertyType, precision, ignoreCase: true));
    }
}
