using Ccr.Kernels.Ops;

namespace Ccr.Nn;

/// <summary>
/// One recorded op: its inputs and a closure that, given the gradient of the op's output, adds the
/// gradients of its inputs through <see cref="Autograd.Accumulate"/>. Dropped (with the tensors it
/// saved) as soon as it has run.
/// </summary>
internal sealed class Node(string op, Tensor[] inputs, Action<Tensor> backward)
{
    public string Op { get; } = op;
    public Tensor[] Inputs { get; } = inputs;
    public Action<Tensor> Backward { get; } = backward;
    /// <summary>The op's group in an active <see cref="OpProfile"/> (null when none was active).</summary>
    public string? ProfileKey { get; init; }
}

/// <summary>Turns gradient recording off inside a using block (optimiser steps, evaluation).</summary>
public sealed class NoGrad : IDisposable
{
    [ThreadStatic] static int _depth;
    public NoGrad() => _depth++;
    public static bool IsEnabled => _depth == 0;
    public void Dispose() => _depth--;
}

/// <summary>Watches a backward pass: <see cref="Begin"/> gets the inputs of every node in the order
/// the nodes will run; <see cref="NodeDone"/>(k) follows the k-th node (also when it had no
/// gradient to propagate), after which it adds nothing more to any gradient.</summary>
public interface IBackwardObserver
{
    void Begin(IReadOnlyList<Tensor[]> nodeInputs);
    void NodeDone(int position);
}

/// <summary>
/// The reverse-mode core (micrograd's engine, for tensors). Ops call <see cref="Record"/>;
/// <see cref="Tensor.Backward"/> walks the graph in reverse topological order. Gradients are
/// accumulated (+=) into leaves; a non-leaf's gradient is freed right after its node has used it.
/// </summary>
public static class Autograd
{
    /// <summary>Records <paramref name="output"/> as made by <paramref name="op"/> from
    /// <paramref name="inputs"/> when grad mode is on and any input requires a gradient.</summary>
    public static Tensor Record(Tensor output, string op, Tensor[] inputs, Action<Tensor> backward)
    {
        output.Name ??= op;
        OpProfile.Current?.Forward(op, output, inputs);
        if (!NoGrad.IsEnabled) return output;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return output;
        output.RequiresGrad = true;
        output.Creator = new Node(op, inputs, backward) { ProfileKey = OpProfile.Current != null ? OpProfile.Key(op, output, inputs) : null };
        return output;
    }

    /// <summary>Adds <paramref name="g"/> into <paramref name="t"/>'s gradient and takes ownership of
    /// <paramref name="g"/> (it is either kept as the gradient or disposed).</summary>
    public static void Accumulate(Tensor t, Tensor g)
    {
        if (!t.RequiresGrad) { g.Dispose(); return; }
        if (g.Numel != t.Numel)
            throw new InvalidOperationException($"gradient of {g.Numel} elements for tensor {t.Describe()}");
        if (t.Grad == null)
        {
            TensorScope.Current?.Keep(g); // gradients of leaves outlive the step's scope
            t.Grad = g;
            return;
        }
        Elementwise.Axpby(t.Device, t.Grad.Data, g.Data, 1f, 1f);
        g.Dispose();
    }

    /// <summary>[distributed] Told the node order before a backward pass on this thread and each
    /// node's completion during it (the gradient reducer starts a bucket's all-reduce as soon as
    /// every node that feeds its parameters has run). Null: no observer.</summary>
    [ThreadStatic] public static IBackwardObserver? Observer;

    internal static void Run(Tensor root, Tensor seed)
    {
        var order = TopoOrder(root);
        var observer = Observer;
        var profile = OpProfile.Current;
        if (observer != null)
        {
            var inputs = new Tensor[order.Count][];
            for (int k = 0; k < order.Count; k++) inputs[k] = order[order.Count - 1 - k].Creator!.Inputs;
            observer.Begin(inputs);
        }
        Accumulate(root, seed);
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            var node = t.Creator!;
            var g = t.Grad;
            t.Creator = null;
            if (g != null) // else no path from the root reached this tensor's gradient
            {
                long start = profile != null ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
                node.Backward(g);
                if (profile != null) profile.Backward(node.ProfileKey ?? node.Op, System.Diagnostics.Stopwatch.GetTimestamp() - start);
                g.Dispose();
                t.Grad = null;
            }
            observer?.NodeDone(order.Count - 1 - i);
        }
    }

    /// <summary>Non-leaf tensors reachable from <paramref name="root"/>, inputs before outputs.</summary>
    static List<Tensor> TopoOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, bool expanded)>();
        stack.Push((root, false));
        while (stack.Count > 0)
        {
            var (t, expanded) = stack.Pop();
            if (t.Creator == null) continue;
            if (expanded) { order.Add(t); continue; }
            if (!seen.Add(t)) continue;
            stack.Push((t, true));
            foreach (var i in t.Creator.Inputs)
                if (i.Creator != null && !seen.Contains(i)) stack.Push((i, false));
        }
        return order;
    }
}

public sealed partial class Tensor
{
    /// <summary>Backpropagates from this tensor. A scalar gets seed 1; otherwise pass the upstream
    /// gradient (same shape). Leaf gradients accumulate (+=) until zeroed.</summary>
    public void Backward(Tensor? seed = null)
    {
        ThrowIfDisposed();
        if (!RequiresGrad) throw new InvalidOperationException($"Backward() on {Describe()}, which does not require a gradient");
        if (seed == null)
        {
            if (Numel != 1) throw new InvalidOperationException($"Backward() without a seed on non-scalar {Describe()}");
            seed = Full(Device, 1f, Shape);
        }
        else
        {
            if (seed.Numel != Numel)
                throw new ArgumentException($"Backward seed {seed.Describe()} does not match {Describe()}");
            var copy = Empty(Device, Shape);
            Elementwise.Axpby(Device, copy.Data, seed.Data, 1f, 0f);
            seed = copy;
        }
        using (new NoGrad()) Autograd.Run(this, seed);
    }

    /// <summary>A tensor that shares nothing with the graph: a copy, not requiring a gradient.</summary>
    public Tensor Detach()
    {
        var t = Empty(Device, DType, Shape);
        if (DType == DType.F32) Elementwise.Axpby(Device, t.Data, Data, 1f, 0f);
        else { var a = IntData.ToArray(); t.IntData.CopyFrom(a); }
        return t;
    }

    public void ZeroGrad()
    {
        if (Grad != null) Elementwise.Fill(Device, Grad.Data, 0f);
    }
}
