namespace Ccr.Nn.Optim;

/// <summary>torch.optim.AdamW: Adam with decoupled weight decay (p *= 1 - lr * wd each step).
/// PyTorch's default weight decay for AdamW is 0.01.</summary>
public sealed class AdamW(ParameterArena arena, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
                          float eps = 1e-8f, float weightDecay = 0.01f, StepScalars? scalars = null)
    : Adam(arena, lr, beta1, beta2, eps, weightDecay, decoupled: true, scalars);
