using Ccr.Kernels.Ops;
using System.Reflection;

namespace Ccr.Bench.Sass;

/// <summary>One kernel as compiled: the method (generic ones closed), its display name
/// (<c>Family.Kernel</c> or <c>Family.Kernel[use]</c>), precision, and how it is launched (null: the
/// device's group size, which is 1024 threads on a CUDA GPU, and no dynamic shared memory).</summary>
public sealed record KernelVariant(string Name, MethodInfo Method, string Precision, List<LaunchShape>? Launches)
{
    /// <summary>A GEMM-family kernel or one of <see cref="GemmVariants.OtherMathKernels"/>: its main loop's mix is reported.</summary>
    public bool Math => Method.DeclaringType == GemmVariants.Family || GemmVariants.OtherMathKernels.Any(k => Name.StartsWith(k, StringComparison.Ordinal));
}

/// <summary>
/// Every kernel of Ccr.Kernels: each type's private static void methods named <c>...Kernel</c> (what ILGPU
/// launches, and what the PTX tests enumerate), found by reflection so a new kernel is in without an edit.
/// Generic kernels of <see cref="GemmVariants.Family"/> are closed over <see cref="GemmVariants.Uses"/>
/// (see there); any other generic kernel over every struct of Ccr.Kernels that satisfies its constraints.
/// </summary>
public static class KernelCatalogue
{
    public const int DefaultThreads = 1024;
    const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static List<KernelVariant> All()
    {
        var asm = typeof(ImplicitGemm).Assembly;
        var list = new List<KernelVariant>();
        foreach (var type in asm.GetTypes().Where(t => !t.IsGenericTypeDefinition).OrderBy(t => t.FullName, StringComparer.Ordinal))
            foreach (var m in PtxCompiler.KernelsOf(type).Where(m => m.DeclaringType == type).OrderBy(m => m.MetadataToken))
            {
                string name = $"{type.Name}.{m.Name}";
                bool family = type == GemmVariants.Family;
                string precision = family ? GemmVariants.Precision(m) : "fp32";
                if (!m.IsGenericMethodDefinition)
                {
                    list.Add(new KernelVariant(name, m, precision, family ? GemmVariants.Launches(m) : null));
                    continue;
                }
                foreach (var (label, closed) in Close(m, family ? GemmVariants.Uses() : new GemmVariants.Use?[] { null }))
                    list.Add(new KernelVariant($"{name}[{label}]", closed, precision, family ? GemmVariants.Launches(closed) : null));
            }
        return list;
    }

    /// <summary>The distinct closings of <paramref name="kernel"/> over <paramref name="uses"/> (a null use:
    /// no operand / output types to offer), labelled by the uses (joined when several give the same types) and
    /// the other type arguments' names.</summary>
    public static List<(string Label, MethodInfo Method)> Close(MethodInfo kernel, GemmVariants.Use?[] uses)
    {
        string name = $"{kernel.DeclaringType!.Name}.{kernel.Name}";
        var byArgs = new List<(Type[] Args, List<string> Labels)>();
        foreach (var use in uses)
            foreach (var (args, extra) in Arguments(kernel, name, use))
            {
                string label = string.Join(",", new[] { use?.Name }.Concat(extra).Where(s => !string.IsNullOrEmpty(s)));
                var same = byArgs.FindIndex(x => x.Args.SequenceEqual(args));
                if (same < 0) byArgs.Add((args, [label]));
                else if (!byArgs[same].Labels.Contains(label)) byArgs[same].Labels.Add(label);
            }
        var closed = new List<(string, MethodInfo)>();
        foreach (var (args, labels) in byArgs)
        {
            MethodInfo m;
            try { m = kernel.MakeGenericMethod(args); }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException(
                    $"{name}<{string.Join(", ", args.Select(a => a.Name))}> ({string.Join("|", labels)}): the type arguments break its constraints " +
                    $"({e.Message}); update Ccr.Bench/Sass/GemmVariants.cs to the kernel's new signature", e);
            }
            closed.Add((string.Join("|", labels), m));
        }
        return closed;
    }

    // every assignment of the generic parameters for one use: operands / output from the use, any other
    // parameter over the structs that satisfy it (a cartesian product); extra = those structs' names
    static IEnumerable<(Type[] Args, string[] Extra)> Arguments(MethodInfo kernel, string name, GemmVariants.Use? use)
    {
        var ps = kernel.GetGenericArguments();
        var choices = new List<Type[]>();
        int operands = 0;
        foreach (var p in ps)
        {
            var cons = p.GetGenericParameterConstraints();
            if (cons.Contains(typeof(IGemmOperand)))
            {
                if (use == null || operands >= 2)
                    throw Unclosable(name, p, use == null ? "an IGemmOperand parameter outside GemmVariants.Family" : "a third IGemmOperand parameter (GemmVariants.Use has A and B)");
                choices.Add([operands++ == 0 ? use.A : use.B]);
            }
            else if (cons.Contains(typeof(IGemmOutput)))
            {
                if (use == null) throw Unclosable(name, p, "an IGemmOutput parameter outside GemmVariants.Family");
                choices.Add([use.Output]);
            }
            else
            {
                var fits = Satisfying(p).Where(t => GemmVariants.Fits(kernel, t)).ToArray();
                if (fits.Length == 0) throw Unclosable(name, p, "no struct of Ccr.Kernels satisfies its constraints");
                choices.Add(fits);
            }
        }
        IEnumerable<Type[]> product = [[]];
        foreach (var c in choices) product = product.SelectMany(prefix => c.Select(t => prefix.Append(t).ToArray()));
        foreach (var args in product)
            yield return (args, args.Where((t, i) => choices[i].Length > 1).Select(t => t.Name).ToArray());
    }

    // structs of the kernel's assembly that implement every interface constraint of p (p must have one:
    // an unconstrained parameter cannot be enumerated)
    static Type[] Satisfying(Type p)
    {
        var ifaces = p.GetGenericParameterConstraints().Where(c => c.IsInterface).ToArray();
        if (ifaces.Length == 0) return [];
        return typeof(ImplicitGemm).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsGenericTypeDefinition && ifaces.All(i => i.IsAssignableFrom(t)))
            .OrderBy(t => t.FullName, StringComparer.Ordinal).ToArray();
    }

    static InvalidOperationException Unclosable(string kernel, Type p, string why) =>
        new($"{kernel}: cannot close type parameter {p.Name} ({why}); update Ccr.Bench/Sass/GemmVariants.cs to the kernel's new signature");
}
