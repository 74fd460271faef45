using Ccr.Kernels.Ops;

namespace Ccr.Nn.Optim;

/// <summary>
/// torch.optim.SGD: weight decay as L2 (g += wd * p); with momentum mu the buffer is g on the first
/// step and mu * buf + (1 - dampening) * g after; Nesterov steps along g + mu * buf.
/// </summary>
public sealed class Sgd : Optimizer
{
    public float Momentum { get; }
    public float Dampening { get; }
    public float WeightDecay { get; set; }
    public bool Nesterov { get; }

    readonly Tensor? _buf; // (P), only with momentum

    public Sgd(ParameterArena arena, float lr, float momentum = 0f, float dampening = 0f, float weightDecay = 0f,
               bool nesterov = false, StepScalars? scalars = null) : base(arena, lr, 3, scalars)
    {
        if (!(momentum >= 0f) || !(weightDecay >= 0f))
            throw new ArgumentOutOfRangeException(nameof(momentum), $"SGD: momentum {momentum} and weight decay {weightDecay} must be >= 0");
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException("SGD: Nesterov momentum requires a momentum and zero dampening");
        Momentum = momentum; Dampening = dampening; WeightDecay = weightDecay; Nesterov = nesterov;
        if (momentum != 0f) _buf = StateBuffer("momentum_buffer");
    }

    protected override void WriteScalars(long step) => WriteScalars(Optimizers.SgdScalars(Lr, WeightDecay, firstStep: step == 1));

    public override void LaunchUpdate() =>
        Optimizers.Sgd(Device, Arena.Values.Data, _buf?.Data ?? Arena.Grads.Data.Slice(0, 0), Arena.Grads.Data,
                       Hyper.Data, Momentum, Dampening, Nesterov, SkipFlag);

    public override IReadOnlyList<(string Name, Tensor Value)> StateTensors() =>
        _buf == null ? [] : [("momentum_buffer", _buf)];

    public override void Dispose()
    {
        _buf?.Dispose();
        base.Dispose();
    }
}
