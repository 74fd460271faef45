using Ccr.Kernels;

namespace Ccr.Nn.Optim;

/// <summary>
/// An optimiser over a <see cref="ParameterArena"/>: every step is one fused launch over the flat
/// parameter and gradient blocks, with its state (moments, momentum buffer) in flat tensors of the
/// same length. The learning rate and the step count are host values: set <see cref="Lr"/> from an
/// <see cref="LrSchedule"/> before each step. For checkpoints, <see cref="Step"/> and
/// <see cref="StateTensors"/> hold the whole state; <see cref="LoadState"/> restores it.
/// A step is two halves: <see cref="PrepareUpdate"/> (host: counts the step and writes its scalars
/// (learning rate, bias corrections) into a <see cref="StepScalars"/> slot) and, after that buffer's
/// upload, <see cref="LaunchUpdate"/> (device only: the kernel reads the scalars from memory), so a
/// training step captured as a CUDA graph replays with each step's values. <see cref="Update"/>
/// does both with the upload in between.
/// </summary>
public abstract class Optimizer : IDisposable
{
    public ParameterArena Arena { get; }
    public Device Device => Arena.Device;
    /// <summary>Learning rate used by the next <see cref="Update"/>.</summary>
    public float Lr { get; set; }
    /// <summary>Steps taken so far (PyTorch's state['step']); the next step is Step + 1.</summary>
    public long Step { get; protected set; }
    /// <summary>When set, every update is skipped on the device while the guard's flag is up (a
    /// non-finite loss or gradient was seen), leaving parameters and state as they were.</summary>
    public FiniteGuard? Guard { get; set; }

    /// <summary>The skip flag for the kernels: the guard's, or none.</summary>
    protected Buf<int> SkipFlag => Guard?.Flag ?? default;

    /// <summary>This optimiser's per-step scalars (device memory, written by <see cref="PrepareUpdate"/>).</summary>
    protected ScalarSlot Hyper { get; }
    readonly StepScalars? _ownScalars;

    /// <param name="scalars">Where the per-step scalars live (the trainer's buffer, uploaded once per
    /// step for everything); null: a buffer of the optimiser's own.</param>
    protected Optimizer(ParameterArena arena, float lr, int scalarCount, StepScalars? scalars)
    {
        if (!(lr >= 0f)) throw new ArgumentOutOfRangeException(nameof(lr), $"learning rate {lr}");
        Arena = arena;
        Lr = lr;
        if (scalars == null) scalars = _ownScalars = new StepScalars(arena.Device, scalarCount);
        Hyper = scalars.Reserve(GetType().Name, scalarCount);
    }

    /// <summary>One optimiser step from the gradients now in the arena (PyTorch's optimizer.step()):
    /// <see cref="PrepareUpdate"/>, the scalars' upload (a host copy), <see cref="LaunchUpdate"/>.</summary>
    public void Update()
    {
        PrepareUpdate();
        Hyper.Owner.Upload();
        LaunchUpdate();
    }

    /// <summary>Host half of a step: counts it (<see cref="Step"/> + 1) and writes its scalars (from
    /// <see cref="Lr"/>) into the slot; upload the slot's buffer before <see cref="LaunchUpdate"/>.</summary>
    public void PrepareUpdate()
    {
        Step++;
        WriteScalars(Step);
    }

    /// <summary>Device half of a step: the fused update, reading the uploaded scalars (launches only;
    /// skipped on the device while the guard is tripped).</summary>
    public abstract void LaunchUpdate();

    /// <summary>Writes the scalars of step <paramref name="step"/> (counted from 1) into <see cref="Hyper"/>.</summary>
    protected abstract void WriteScalars(long step);

    protected void WriteScalars(float[] values)
    {
        for (int i = 0; i < values.Length; i++) Hyper[i] = values[i];
    }

    public void ZeroGrad() => Arena.ZeroGrad();

    /// <summary>The optimiser's state tensors by name (PyTorch's names: exp_avg, exp_avg_sq,
    /// momentum_buffer), each as long as the arena, in arena order.</summary>
    public abstract IReadOnlyList<(string Name, Tensor Value)> StateTensors();

    /// <summary>Restores the step count and every state tensor from host arrays (a checkpoint).
    /// Names and lengths must match <see cref="StateTensors"/> exactly.</summary>
    public void LoadState(long step, IReadOnlyDictionary<string, float[]> state)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"{GetType().Name}: step {step}");
        var own = StateTensors();
        foreach (var key in state.Keys)
            if (!own.Any(s => s.Name == key))
                throw new ArgumentException($"{GetType().Name}: unknown state tensor '{key}'");
        foreach (var (name, t) in own)
        {
            if (!state.TryGetValue(name, out var data))
                throw new ArgumentException($"{GetType().Name}: state tensor '{name}' missing from the checkpoint");
            if (data.Length != t.Numel)
                throw new ArgumentException($"{GetType().Name}: state tensor '{name}' has {data.Length} values, the arena {t.Numel}");
        }
        foreach (var (name, t) in own) t.Data.CopyFrom(state[name]);
        Step = step;
    }

    /// <summary>A flat zero tensor as long as the arena, outside any scope.</summary>
    protected Tensor StateBuffer(string name)
    {
        var t = Tensor.Zeros(Device, checked((int)Arena.Count));
        TensorScope.Forget(t);
        t.Name = name;
        return t;
    }

    public virtual void Dispose() => _ownScalars?.Dispose();
}
