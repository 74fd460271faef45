namespace Ccr.Nn;

/// <summary>
/// Disposes every tensor created inside it (TorchSharp's DisposeScope). Results escape with
/// <see cref="Keep"/> (moved to the enclosing scope, or to none). Scopes nest per thread.
/// <code>
/// using (var scope = new TensorScope()) { var loss = model.Loss(batch); loss.Backward(); ... }
/// </code>
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? _current;
    readonly TensorScope? _outer;
    readonly HashSet<Tensor> _owned = new(ReferenceEqualityComparer.Instance);
    bool _disposed;

    public TensorScope()
    {
        _outer = _current;
        _current = this;
    }

    public static TensorScope? Current => _current;

    internal static void Register(Tensor t) => _current?._owned.Add(t);

    /// <summary>Takes <paramref name="t"/> out of scope ownership entirely (parameters, buffers).</summary>
    public static void Forget(Tensor t) => _current?._owned.Remove(t);

    /// <summary>Moves <paramref name="t"/> out of this scope into the enclosing one (if any).</summary>
    public Tensor Keep(Tensor t)
    {
        if (_owned.Remove(t)) _outer?._owned.Add(t);
        return t;
    }

    public int Count => _owned.Count;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        if (_current == this) _current = _outer;
    }
}
