using Ccr.Kernels;

namespace Ccr.Nn.Modules;

/// <summary>
/// torch.nn.BatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1, momentum 0.1, eps 1e-5.
/// Training mode normalises with batch statistics and updates the running ones (unbiased variance);
/// eval mode uses the running statistics.
/// </summary>
public sealed class BatchNorm2d : Layer
{
    public int Channels { get; }
    public float Momentum { get; }
    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }
    /// <summary>PyTorch's num_batches_tracked (an int64 buffer there), kept on the host.</summary>
    public long NumBatchesTracked { get; set; }
    /// <summary>[distributed] Set when sync_bn is on with several ranks: training-mode statistics
    /// are then those of every rank's batch together (Ccr.Nn.Distributed.BatchNormSync).</summary>
    public Distributed.IBatchNormSync? Sync { get; set; }

    public BatchNorm2d(Device d, int channels, float momentum = 0.1f, float eps = 1e-5f)
    {
        Channels = channels; Momentum = momentum; Eps = eps;
        Weight = Param("weight", Tensor.Full(d, 1f, channels));
        Bias = Param("bias", Tensor.Zeros(d, channels));
        RunningMean = Buffer("running_mean", Tensor.Zeros(d, channels));
        RunningVar = Buffer("running_var", Tensor.Full(d, 1f, channels));
    }

    public override Tensor Forward(Tensor x)
    {
        if (Training) NumBatchesTracked++;
        if (Training && Sync != null) return Sync.Forward(this, x); // [distributed] statistics over every rank
        return Functional.F.BatchNorm2d(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
    }

    /// <summary>relu(this(x) + residual) as one fused op (no residual: relu(this(x))); the same
    /// result as <c>F.Relu(F.Add(Forward(x), residual))</c> with fewer passes over memory.</summary>
    public Tensor ForwardRelu(Tensor x, Tensor? residual = null)
    {
        if (Training) NumBatchesTracked++;
        if (Training && Sync != null) return Sync.Forward(this, x, residual, relu: true); // [distributed]
        return Functional.F.BatchNormRelu(x, Weight, Bias, RunningMean, RunningVar, Training, residual, Momentum, Eps);
    }
}
