using System.Reflection;
using Ccr.Kernels;
using ILGPU;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// <see cref="LaunchLog"/> describes a launch's struct arguments by their public fields only (no
/// reflection into non-public members). That describes them whole only while every struct a kernel
/// takes keeps its data in public fields: checked here for every kernel of Ccr.Kernels (static
/// methods taking an ArrayView), the structs their generic parameters may be (implementations of
/// the constraint interfaces), and the structs inside those.
/// </summary>
public class KernelArgumentTests
{
    [Fact]
    public void EveryKernelArgumentStructHasOnlyPublicFields()
    {
        var asm = typeof(LaunchLog).Assembly;
        var types = asm.GetTypes();
        var kernels = types.SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.GetParameters().Any(p => IsView(p.ParameterType)))
            .ToList();
        Assert.True(kernels.Count > 50, $"{kernels.Count} kernels found");
        var pending = new Queue<Type>();
        foreach (var p in kernels.SelectMany(m => m.GetParameters()).Select(p => p.ParameterType))
        {
            if (!p.IsGenericParameter) { pending.Enqueue(p); continue; }
            foreach (var c in p.GetGenericParameterConstraints().Where(c => c.IsInterface))
                foreach (var impl in types.Where(t => t.IsValueType && !t.IsGenericTypeDefinition && t.GetInterfaces().Any(i => Same(i, c))))
                    pending.Enqueue(impl);
        }
        var seen = new HashSet<Type>();
        var hidden = new List<string>();
        while (pending.TryDequeue(out var t))
        {
            if (!t.IsValueType || t.IsPrimitive || t.IsEnum || IsView(t) || t.Assembly != asm || !seen.Add(t)) continue;
            hidden.AddRange(t.GetFields(BindingFlags.Instance | BindingFlags.NonPublic).Select(f => $"{t.FullName}.{f.Name}"));
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public)) pending.Enqueue(f.FieldType);
        }
        Assert.True(seen.Count > 20, $"{seen.Count} argument structs found");
        Assert.Empty(hidden);
    }

    static bool IsView(Type t) => typeof(IArrayView).IsAssignableFrom(t) ||
        t.IsGenericType && t.GetGenericTypeDefinition() == typeof(ArrayView<>);

    static bool Same(Type i, Type c) => i == c || i.IsGenericType && c.IsGenericType && i.GetGenericTypeDefinition() == c.GetGenericTypeDefinition();
}
