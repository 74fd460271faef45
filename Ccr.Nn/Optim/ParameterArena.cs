using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Optim;

/// <summary>
/// Parameters and their gradients in two flat device blocks (llm.c's layout), so that zeroing the
/// gradients and an optimiser step are one launch each over the whole model. Building the arena
/// copies each parameter's values in and rebinds the parameter tensors (and their gradients) to
/// views of it; the model keeps using the same Tensor objects.
/// </summary>
public sealed class ParameterArena : IDisposable
{
    public Device Device { get; }
    public IReadOnlyList<Tensor> Parameters { get; }
    /// <summary>Element offset of each parameter in the arena, in <see cref="Parameters"/> order.</summary>
    public IReadOnlyList<long> Offsets { get; }
    public long Count { get; }
    public Tensor Values { get; }
    public Tensor Grads { get; }

    public ParameterArena(IReadOnlyList<Tensor> parameters)
    {
        if (parameters.Count == 0) throw new ArgumentException("ParameterArena: no parameters");
        Device = parameters[0].Device;
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var offsets = new List<long>();
        long n = 0;
        foreach (var p in parameters)
        {
            if (!seen.Add(p)) throw new ArgumentException($"ParameterArena: parameter {p.Describe()} listed twice");
            if (p.DType != DType.F32) throw new ArgumentException($"ParameterArena: parameter {p.Describe()} is not float32");
            if (p.Device != Device) throw new ArgumentException($"ParameterArena: parameter {p.Describe()} is on another device");
            offsets.Add(n);
            n += p.Numel;
        }
        Parameters = parameters.ToArray();
        Offsets = offsets;
        Count = n;
        Values = Tensor.Empty(Device, (int)n);
        Grads = Tensor.Zeros(Device, (int)n);
        TensorScope.Forget(Values);
        TensorScope.Forget(Grads);
        Values.Name = "parameter arena";
        Grads.Name = "gradient arena";
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            var slot = Values.Data.Slice(offsets[i], p.Numel);
            Elementwise.Axpby(Device, slot, p.Data, 1f, 0f);
            p.Rebind(Values.Block, offsets[i]);
            var old = p.Grad;
            var g = Tensor.ViewOf(Device, Grads.Block, offsets[i], DType.F32, p.Shape);
            TensorScope.Forget(g);
            g.Name = p.Name + ".grad";
            if (old != null) { Elementwise.Axpby(Device, g.Data, old.Data, 1f, 0f); old.Dispose(); }
            p.Grad = g;
        }
    }

    public void ZeroGrad() => Elementwise.Fill(Device, Grads.Data, 0f);

    public void Dispose()
    {
        Grads.Dispose();
        Values.Dispose();
    }
}
