using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Models;
using Ccr.Nn.Modules;
using Ccr.Nn.Optim;
using Ccr.Training.Config;
using Ccr.Training.Data;
using Ccr.Training.MultiTask;

namespace Ccr.Training;

/// <summary>The model and the regulariser as one module, so parameters, checkpoints and the
/// parameter arena cover both ("model.*", "ccr.*").</summary>
public sealed class TrainModule : Module
{
    public MultiTaskModel Model { get; }
    public CcrLoss? CcrLoss { get; }

    public TrainModule(MultiTaskModel model, CcrLoss? ccr)
    {
        Model = Child("model", model);
        if (ccr != null) CcrLoss = Child("ccr", ccr);
    }
}

/// <summary>
/// Everything a run is built from its config: the device, the datasets, the model, the
/// regulariser, the parameter arena, the optimiser (guarded by a device-side finite check) and the
/// learning-rate schedule. The config is assumed checked (<see cref="Config.ConfigLoader"/>); what
/// only shows when building (a dataset folder's files, a projector sharing that needs equal
/// channels, pretrained weights that do not fit) is reported as a one-line error here.
/// </summary>
public sealed class TrainSession : IDisposable
{
    public TrainConfig Config { get; }
    public Device Device { get; }
    /// <summary>train.precision: the arithmetic of every conv and GEMM of the step (backbone, decoders,
    /// CCR's projectors), set on the whole <see cref="Root"/> module once it is built.</summary>
    public MathPrecision ComputePrecision { get; }
    public DatasetInfo Info { get; }
    public IDataset TrainSet { get; }
    public IDataset ValSet { get; }
    public MultiTaskModel Model { get; }
    public CcrLoss? CcrLoss { get; }
    public TrainModule Root { get; }
    public ParameterArena Arena { get; }
    public Optimizer Optimizer { get; }
    public DataLoader Loader { get; }
    public LrSchedule Schedule { get; }
    public long TotalSteps { get; }
    /// <summary>Divergence check of every step: the loss terms of <see cref="LossTermNames"/> and the
    /// gradient arena; the optimiser skips its update while it is tripped.</summary>
    public FiniteGuard Guard { get; }
    /// <summary>The loss terms the guard checks, in order: each task, "ccr" (when on), "total".</summary>
    public IReadOnlyList<string> LossTermNames { get; }
    /// <summary>The scalars that change every step (learning rate and bias corrections, CCR's
    /// lambda, saliency's class weights), uploaded once before each step.</summary>
    public StepScalars Scalars { get; }
    /// <summary>Saliency's class weights of the current batch (when "sal" is trained).</summary>
    public ScalarSlot? SaliencyWeights { get; }
    /// <summary>The trainer's CUDA graphs of the step (made by the trainer on first use; disposed here).</summary>
    internal StepGraphs? Graphs { get; set; }
    /// <summary>The trainer's fixed device buffers of the batch (refilled every step; disposed here).</summary>
    public DeviceBatch? Staging { get; set; }

    /// <summary>[distributed] The ranks this session trains with (one process: DistContext.Single).</summary>
    public DataParallel.DistContext Dist { get; }

    public TrainSession(TrainConfig c, Device device, DataParallel.DistContext? dist = null)
    {
        Config = c;
        Device = device;
        ComputePrecision = c.Train.Precision;
        Dist = dist ?? DataParallel.DistContext.Single;
        foreach (var t in c.Tasks) TaskNames.Validate(t);
        (TrainSet, ValSet) = Dist.PrimaryFirst(() => OpenData(c), "the data set"); // [distributed] rank 0 generates SynthRooms
        Info = TrainSet.Info;
        var rng = new Rng((ulong)c.Seed, 1);
        Scalars = new StepScalars(device);
        if (c.Tasks.Contains(TaskNames.Saliency)) SaliencyWeights = Scalars.Reserve("saliency class weights", 2);
        Model = BuildModel(c, device, Info, rng);
        // model.pretrained is applied by TrainCommand before training (PretrainedWeights); eval and
        // infer take every weight from the checkpoint.
        if (c.Ccr.Enabled && c.Tasks.Count > 1)
        {
            try
            {
                CcrLoss = new CcrLoss(device, rng, c.Ccr, c.Tasks.Select(t => (t, Model.Decoders[t].FeatureChannels)).ToList(),
                                  seed: (ulong)c.Seed + 1000, scalars: Scalars);
            }
            catch (ArgumentException e)
            {
                throw new ConfigException($"ccr.sharing = {c.Ccr.Sharing.ConfigWord()}: {e.Message}");
            }
        }
        Root = new TrainModule(Model, CcrLoss);
        Root.To(ComputePrecision);
        Loader = new DataLoader(TrainSet, new DataLoaderOptions
        {
            BatchSize = c.Train.BatchSize,
            Shuffle = true,
            DropLast = true,
            Seed = (ulong)c.Seed,
            Workers = Math.Max(1, c.Data.Workers),
            Policy = c.Data.SkipBad ? BadSamplePolicy.Skip : BadSamplePolicy.Stop,
            ShardRank = Dist.Rank, // [distributed] this rank's share of every epoch
            ShardCount = Dist.Size,
            Augment = c.Data.Augment ? new AugmentOptions { CropHeight = c.Data.CropHeight, CropWidth = c.Data.CropWidth } : null,
        });
        if (Loader.BatchesPerEpoch == 0)
            throw new ConfigException($"train.batch_size = {c.Train.BatchSize}: the training set has only {TrainSet.Count} samples, fewer than one batch" +
                (Dist.Size > 1 ? $" per rank ({Loader.SamplesPerEpoch} samples for each of {Dist.Size} ranks)" : ""));
        long perEpoch = Loader.BatchesPerEpoch;
        TotalSteps = c.Train.MaxSteps > 0 ? Math.Min(c.Train.MaxSteps, perEpoch * c.Train.Epochs) : perEpoch * c.Train.Epochs;
        long warmup = (long)Math.Round(c.Train.WarmupEpochs * perEpoch);
        Schedule = c.Train.Schedule switch
        {
            ScheduleKind.Poly => LrSchedule.Poly(c.Train.Lr, perEpoch * c.Train.Epochs, warmup),
            ScheduleKind.Constant => LrSchedule.Constant(c.Train.Lr, warmup),
            _ => throw new ArgumentOutOfRangeException(nameof(c), c.Train.Schedule, "train.schedule"),
        };
        Arena = new ParameterArena(Root.Parameters().ToList());
        Optimizer = c.Train.Optimizer switch
        {
            OptimizerKind.Adam => new Adam(Arena, c.Train.Lr, weightDecay: c.Train.WeightDecay, scalars: Scalars),
            OptimizerKind.AdamW => new AdamW(Arena, c.Train.Lr, weightDecay: c.Train.WeightDecay, scalars: Scalars),
            OptimizerKind.Sgd => new Sgd(Arena, c.Train.Lr, c.Train.Momentum, weightDecay: c.Train.WeightDecay, scalars: Scalars),
            _ => throw new ArgumentOutOfRangeException(nameof(c), c.Train.Optimizer, "train.optimizer"),
        };
        LossTermNames = [.. c.Tasks, .. CcrLoss != null ? new[] { "ccr" } : [], "total"];
        Guard = new FiniteGuard(device, LossTermNames.Count);
        Optimizer.Guard = Guard;
        DataParallel.DistributedTraining.Attach(this); // [distributed] rank 0's weights everywhere, sync BN, gradient reducer
    }

    /// <summary>
    /// The multi-task network of a config (no regulariser): backbone, heads and one output per task
    /// with the class counts of <paramref name="info"/>. Training draws its initial weights from
    /// <paramref name="rng"/>; eval and infer build it the same way and load a checkpoint over it.
    /// </summary>
    public static MultiTaskModel BuildModel(TrainConfig c, Device device, DatasetInfo info, Rng rng)
    {
        var specs = c.Tasks.Select(t => new TaskSpec(t, TaskHeads.OutChannels(t,
            TaskInfo.IsClassification(t) ? info.Classes(t) : 0))).ToList();
        var kind = c.Model.Head switch
        {
            HeadKind.Fpn => DecoderKind.SemanticFpn,
            HeadKind.HrNet => DecoderKind.HrNetHead,
            _ => throw new ArgumentOutOfRangeException(nameof(c), c.Model.Head, "model.head"),
        };
        return new MultiTaskModel(device, rng, Backbone(c.Model.Backbone), kind, specs,
                                  c.Model.FpnChannels, c.Model.HeadChannels);
    }

    /// <summary>The network shape of model.backbone.</summary>
    public static HrNetConfig Backbone(BackboneKind backbone) => backbone switch
    {
        BackboneKind.HrnetW18SmallV2 => HrNetConfig.W18SmallV2,
        BackboneKind.HrnetTiny => HrNetConfig.Tiny,
        _ => throw new ArgumentOutOfRangeException(nameof(backbone), backbone, "model.backbone"),
    };

    public static (IDataset Train, IDataset Val) OpenData(TrainConfig c) =>
        (OpenSplit(c, c.Data.TrainSplit), OpenSplit(c, c.Data.ValSplit));

    /// <summary>One split of the config's dataset (SynthRooms is generated on first use).</summary>
    public static IDataset OpenSplit(TrainConfig c, string split)
    {
        var policy = c.Data.SkipBad ? BadSamplePolicy.Skip : BadSamplePolicy.Stop;
        switch (c.Data.Dataset)
        {
            case DatasetKind.Synth:
            {
                string dir = SynthRooms.EnsureCached(c.Data.Path, c.Data.Height, c.Data.Width, (ulong)(c.Data.Seed ?? c.Seed),
                                                     c.Data.TrainSize, c.Data.ValSize, c.Data.TestSize);
                return SynthRooms.Open(dir, split, c.Tasks, policy);
            }
            case DatasetKind.Nyud or DatasetKind.Pascal:
            {
                string dataset = c.Data.Dataset.ConfigWord();
                if (!Directory.Exists(c.Data.Path))
                    throw new ConfigException($"data.path = {c.Data.Path}: folder does not exist (dataset {dataset}; see data/README.md)");
                return DatasetSpec.Open(dataset + ":" + c.Data.Path, split, c.Tasks, policy); // the spec the eval/score commands' --data takes
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(c), c.Data.Dataset, "data.dataset");
        }
    }

    public void Dispose()
    {
        Graphs?.Dispose();
        Staging?.Dispose();
        Optimizer.Dispose();
        Guard.Dispose();
        Arena.Dispose();
        Root.DisposeTensors();
        Scalars.Dispose();
    }
}
