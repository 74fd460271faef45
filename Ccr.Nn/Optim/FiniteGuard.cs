using Ccr.Kernels.Ops;
using Ccr.Kernels;

namespace Ccr.Nn.Optim;

/// <summary>What the host learns when it reads a <see cref="FiniteGuard"/>: whether any step since it
/// was armed had a non-finite loss term or gradient, the first such step, which term it was
/// (an index into the term names, or the term count for the gradients), and the loss terms of the
/// most recent step.</summary>
public sealed record FiniteStatus(bool Tripped, long FirstBadStep, int FirstBadTerm, float[] Terms);

/// <summary>
/// Divergence detection without a per-step host synchronisation. Each step, <see cref="Record"/>
/// copies the step's loss terms (scalars) into one device buffer and runs <see cref="FiniteCheck"/>
/// over them and the gradient arena; an optimiser given this guard (<see cref="Optimizer.Guard"/>)
/// skips its update on the device while the flag is set, so once a step goes bad the weights stay
/// those from before it. The host reads the state with <see cref="Read"/> when it chooses (the
/// trainer: at log steps and before every checkpoint). Note that the optimiser's host step count
/// still advances over skipped steps: a tripped guard ends the run, and no checkpoint is written
/// after it trips.
/// </summary>
public sealed class FiniteGuard : IDisposable
{
    public Device Device { get; }
    public int TermCount { get; }
    readonly Tensor _state; // (StateLength) int32
    readonly Tensor _terms; // (TermCount) float32: the latest step's loss terms

    public FiniteGuard(Device device, int termCount)
    {
        if (termCount < 1) throw new ArgumentOutOfRangeException(nameof(termCount), $"FiniteGuard: {termCount} terms");
        Device = device;
        TermCount = termCount;
        _state = Tensor.FromArray(device, FiniteCheck.Armed(0), FiniteCheck.StateLength);
        _terms = Tensor.Zeros(device, termCount);
        TensorScope.Forget(_state);
        TensorScope.Forget(_terms);
        _state.Name = "finite-guard state";
        _terms.Name = "finite-guard terms";
    }

    /// <summary>The flag the optimiser kernels read (entry 0 of the state).</summary>
    public Kernels.Buf<int> Flag => _state.IntData;

    /// <summary>Clears the flag; the next recorded step is number <paramref name="nextStep"/>.</summary>
    public void Arm(long nextStep) => _state.IntData.CopyFrom(FiniteCheck.Armed(nextStep));

    /// <summary>Checks one step: its loss terms (one-element tensors, in the order of the names the
    /// caller reports) and <paramref name="gradients"/> (the flat arena). Launches only.</summary>
    public void Record(IReadOnlyList<Tensor> terms, Tensor gradients)
    {
        if (terms.Count != TermCount) throw new ArgumentException($"FiniteGuard: {terms.Count} terms, expected {TermCount}");
        for (int i = 0; i < terms.Count; i++)
        {
            if (terms[i].Numel != 1) throw new ArgumentException($"FiniteGuard: term {i} ({terms[i].Describe()}) is not a scalar");
            Elementwise.Axpby(Device, _terms.Data.Slice(i, 1), terms[i].Data, 1f, 0f);
        }
        FiniteCheck.Check(Device, _state.IntData, _terms.Data, gradients.Data);
    }

    /// <summary>Reads the state and the latest terms back (this waits for the device).</summary>
    public FiniteStatus Read()
    {
        var s = _state.ToIntArray();
        return new FiniteStatus(s[FiniteCheck.Tripped] != 0, s[FiniteCheck.FirstStep], s[FiniteCheck.FirstTerm], _terms.ToArray());
    }

    public void Dispose()
    {
        _state.Dispose();
        _terms.Dispose();
    }
}
