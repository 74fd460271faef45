using Ccr.Kernels.Ops;

namespace Ccr.Nn.Optim;

/// <summary>
/// torch.optim.Adam: bias-corrected moments (step counted from 1), eps added to sqrt(v_hat), and
/// weight decay as L2 (g += wd * p). With <see cref="Decoupled"/> it is torch.optim.AdamW (the
/// parameter is multiplied by 1 - lr * wd before the update, the gradient is left alone).
/// </summary>
public class Adam : Optimizer
{
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; set; }
    public bool Decoupled { get; }

    readonly Tensor _expAvg;   // (P)
    readonly Tensor _expAvgSq; // (P)

    public Adam(ParameterArena arena, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
                float weightDecay = 0f, bool decoupled = false, StepScalars? scalars = null) : base(arena, lr, 4, scalars)
    {
        if (!(beta1 >= 0f && beta1 < 1f) || !(beta2 >= 0f && beta2 < 1f))
            throw new ArgumentOutOfRangeException(nameof(beta1), $"Adam: betas ({beta1}, {beta2}) must be in [0, 1)");
        if (!(eps >= 0f) || !(weightDecay >= 0f))
            throw new ArgumentOutOfRangeException(nameof(eps), $"Adam: eps {eps} and weight decay {weightDecay} must be >= 0");
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay; Decoupled = decoupled;
        _expAvg = StateBuffer("exp_avg");
        _expAvgSq = StateBuffer("exp_avg_sq");
    }

    protected override void WriteScalars(long step) =>
        WriteScalars(Optimizers.AdamScalars(step, Lr, Beta1, Beta2, WeightDecay, Decoupled));

    public override void LaunchUpdate() =>
        Optimizers.Adam(Device, Arena.Values.Data, _expAvg.Data, _expAvgSq.Data, Arena.Grads.Data, Hyper.Data, Beta1, Beta2, Eps, SkipFlag);

    public override IReadOnlyList<(string Name, Tensor Value)> StateTensors() =>
        [("exp_avg", _expAvg), ("exp_avg_sq", _expAvgSq)];

    public override void Dispose()
    {
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        base.Dispose();
    }
}
