using Ccr.Kernels;

namespace Ccr.Nn.Modules;

/// <summary>
/// Base of every layer and model: owns its parameters (tensors with RequiresGrad), buffers (running
/// statistics) and children, named as PyTorch names them, so that state dicts line up with timm's.
/// </summary>
public abstract class Module
{
    readonly List<(string Name, Tensor T)> _params = new();
    readonly List<(string Name, Tensor T)> _buffers = new();
    readonly List<(string Name, Module M)> _children = new();

    public bool Training { get; private set; } = true;

    protected Tensor Param(string name, Tensor t)
    {
        TensorScope.Forget(t);
        t.RequiresGrad = true;
        t.Name = name;
        _params.Add((name, t));
        return t;
    }

    protected Tensor Buffer(string name, Tensor t)
    {
        TensorScope.Forget(t);
        t.Name = name;
        _buffers.Add((name, t));
        return t;
    }

    protected T Child<T>(string name, T m) where T : Module
    {
        _children.Add((name, m));
        return m;
    }

    public IEnumerable<(string Name, Module Module)> Children() => _children;

    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (n, t) in _params) yield return (prefix + n, t);
        foreach (var (n, m) in _children)
            foreach (var p in m.NamedParameters(prefix + n + ".")) yield return p;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var (n, t) in _buffers) yield return (prefix + n, t);
        foreach (var (n, m) in _children)
            foreach (var b in m.NamedBuffers(prefix + n + ".")) yield return b;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    public long ParameterCount() => Parameters().Sum(p => p.Numel);

    /// <summary>Training mode (batch statistics in batch norm) for this module and all children.</summary>
    public void Train(bool on = true)
    {
        Training = on;
        foreach (var (_, m) in _children) m.Train(on);
    }

    public void Eval() => Train(false);

    /// <summary>Runs the GEMMs and convolutions of this module and all its children at
    /// <paramref name="precision"/> (the CUDA variant's fp32 or TF32; the CPU variant computes in
    /// fp32), as PyTorch's <c>model.to(dtype)</c> converts a whole model in one call. Returns this module.</summary>
    public Module To(MathPrecision precision)
    {
        ApplyPrecision(precision);
        foreach (var (_, m) in _children) m.To(precision);
        return this;
    }

    /// <summary>This module's own share of <see cref="To(MathPrecision)"/>: a module that runs GEMMs
    /// itself (not through children) keeps the precision and passes it to them.</summary>
    protected virtual void ApplyPrecision(MathPrecision precision) { }

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>Disposes every parameter and buffer (a model that is no longer used).</summary>
    public virtual void DisposeTensors()
    {
        foreach (var (_, t) in NamedParameters()) { t.Grad?.Dispose(); t.Dispose(); }
        foreach (var (_, t) in NamedBuffers()) t.Dispose();
    }
}

/// <summary>A module with one input and one output.</summary>
public abstract class Layer : Module
{
    public abstract Tensor Forward(Tensor x);
}

/// <summary>Layers applied in order, named "0", "1", ... as torch.nn.Sequential names them.</summary>
public sealed class Sequential : Layer
{
    readonly List<Layer> _layers = new();

    public Sequential(params Layer[] layers)
    {
        foreach (var l in layers) Add(l);
    }

    public Sequential Add(Layer l)
    {
        Child(_layers.Count.ToString(), l);
        _layers.Add(l);
        return this;
    }

    public int Count => _layers.Count;
    public Layer this[int i] => _layers[i];

    public override Tensor Forward(Tensor x)
    {
        for (int i = 0; i < _layers.Count; i++)
        {
            // batch norm directly followed by ReLU runs as one fused op (same result, fewer passes)
            if (_layers[i] is BatchNorm2d bn && i + 1 < _layers.Count && _layers[i + 1] is ReLU) { x = bn.ForwardRelu(x); i++; }
            else x = _layers[i].Forward(x);
        }
        return x;
    }
}

public sealed class ReLU : Layer
{
    public override Tensor Forward(Tensor x) => Functional.F.Relu(x);
}

/// <summary>Passes its input through (timm's nn.Identity).</summary>
public sealed class Identity : Layer
{
    public override Tensor Forward(Tensor x) => x;
}
