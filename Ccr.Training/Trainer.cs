using Ccr.Nn.Modules;
using Ccr.Nn.Contrastive;
using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Nn.IO;
using Ccr.Training.Config;
using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>How <see cref="Trainer.Run"/> ended (errors are exceptions).</summary>
public enum TrainOutcome { Completed, Stopped }

/// <summary>
/// The training loop: one TensorScope per step (forward, task losses, the regulariser, backward,
/// the device-side finite check, one fused optimiser launch), metrics.csv every log_every steps,
/// evaluation and checkpoints at epoch ends. Resumable bit for bit: the data order and augmentation
/// are pure functions of (seed, epoch, index), and the checkpoint holds the parameters, buffers,
/// optimiser state and the regulariser's sampling RNG.
/// </summary>
/// <remarks>
/// No step waits for the device: the loss values are read at log steps only, and divergence is
/// caught by the session's <see cref="Nn.Optim.FiniteGuard"/> (a non-finite loss term or gradient
/// makes the optimiser skip its update on the device), which the host reads at log steps and
/// before every evaluation and checkpoint; a tripped guard stops the run with the first bad step
/// and term. <see cref="Checkpoint.Save"/> refuses non-finite values (batch-norm running statistics
/// can overflow while the loss stays finite), so no checkpoint ever holds one.
/// Nothing is written to the run folder before <see cref="Run"/> (a failed <see cref="Resume"/>
/// leaves it as it was). [distributed] The guard checks the gradients after their all-reduce (the
/// same on every rank) and this rank's loss terms; a rank that trips stops the whole job at its
/// next check, before any checkpoint. Only rank 0 writes files and prints.
/// </remarks>
public sealed class Trainer
{
    readonly TrainSession _s;
    RunLog _log;
    readonly string _dir;
    readonly Action<string>? _printer;
    readonly bool _primary; // [distributed] only rank 0 writes files and prints
    Reporting.TrainingProgress? _progress;
    Reporting.TensorBoardLog? _tb; // train.tensorboard: event files beside metrics.csv (rank 0)
    volatile string? _stopReason;
    bool _resumed;
    bool _stepsRecounted; // resumed with another global batch: step numbers count other batches from here
    long _truncateAt;
    long? _lastCkptStep;
    long? _savedAt; // the Step that last.ckpt holds, the same on every rank (a stop writes it only when older)

    public long Step { get; private set; }
    public double BestMetric { get; private set; } = double.NaN;
    /// <summary>When true, the total loss of every step is read back into <see cref="StepLosses"/>:
    /// a host synchronisation per step, for tests of resumption only.</summary>
    public bool RecordStepLosses { get; init; }
    public List<float> StepLosses { get; } = new();
    public Dictionary<string, Dictionary<string, double>>? LastEval { get; private set; }
    /// <summary>Wraps each checkpoint's file stream (tests simulate a full disk with it).</summary>
    public Func<Stream, Stream>? CheckpointStream { get; init; }
    /// <summary>Why the run was asked to stop ("Ctrl-C", "SIGTERM"), or null.</summary>
    public string? StopReason => _stopReason;

    public string LastCkpt => Path.Combine(_dir, "last.ckpt");
    public string BestCkpt => Path.Combine(_dir, "best.ckpt");

    /// <param name="print">Where messages go (tests); null: the terminal, with a live display while running.</param>
    public Trainer(TrainSession session, string runDir, Action<string>? print = null)
    {
        _s = session;
        _dir = runDir;
        _primary = session.Dist.IsPrimary;
        _log = new RunLog(runDir);
        _printer = _primary ? print : _ => { };
    }

    void Say(string text)
    {
        if (_printer != null) _printer(text);
        else if (_progress != null) _progress.Message(text);
        else Console.WriteLine(text);
    }

    /// <summary>Stops after the current step, writing last.ckpt (Ctrl-C, SIGTERM).</summary>
    public void RequestStop(string reason = "Ctrl-C") => _stopReason ??= reason;

    /// <summary>Loads last.ckpt of the run folder: weights, optimiser state, step, RNG. Throws (and
    /// changes nothing) when it is missing, damaged or of another model.</summary>
    public void Resume()
    {
        // [distributed] rank 0 reads the checkpoint and sends it to the other ranks
        if (!_primary)
        {
            (Step, BestMetric) = DataParallel.DistributedTraining.ShareResume(_s, null, 0, double.NaN, Say);
            _resumed = true;
            _savedAt = Step;
            return;
        }
        if (!File.Exists(LastCkpt)) throw new ConfigException($"--resume: no {LastCkpt} to resume from");
        var opt = _s.Optimizer;
        var state = Checkpoint.Load(LastCkpt, _s.Root, opt.StateTensors().ToDictionary(t => t.Name, t => t.Value));
        opt.LoadState(state.Step, opt.StateTensors().ToDictionary(t => t.Name, t => t.Value.ToArray()));
        Step = state.Step;
        BestMetric = state.BestMetric;
        if (_s.CcrLoss != null) _s.CcrLoss.SamplingRng = state.RestoreRng();
        _resumed = true;
        _truncateAt = state.Step;
        _lastCkptStep = state.Step;
        Say($"resumed from {LastCkpt} at step {Step} (epoch {state.Epoch})");
        (Step, BestMetric) = DataParallel.DistributedTraining.ShareResume(_s, state, Step, BestMetric, Say); // [distributed] and another rank count
        _savedAt = Step;
        _stepsRecounted = Step != state.Step;
    }

    /// <summary>Trains until the configured epochs (or max_steps) are done or a stop is requested.
    /// Divergence throws <see cref="NonFiniteException"/>; the live display is closed and the plots
    /// drawn however the run ends.</summary>
    public TrainOutcome Run()
    {
        if (_primary)
        {
            Directory.CreateDirectory(_dir);
            foreach (var f in Checkpoint.RemoveStaleTemporaries(_dir)) Say($"removed {f}, left by a checkpoint write that was killed");
            if (_resumed) _log.TruncateAfter(_truncateAt);
            if (_stepsRecounted) KeepOldMetrics();
            // a resumed run's config.yaml is replaced with its first checkpoint: a resume with a --set
            // that fails (diverges) leaves the config the next plain --resume should use
            if (!_resumed) WriteConfig();
            if (_s.Config.Train.Tensorboard) _tb = new Reporting.TensorBoardLog(_dir, _resumed ? _truncateAt : null);
        }
        _s.Guard.Arm(Step);
        if (_printer == null) _progress = new Reporting.TrainingProgress(live: _s.Dist.IsDistributed ? false : null); // mpirun interleaves redraws
        try
        {
            return Loop();
        }
        finally
        {
            Finish();
        }
    }

    TrainOutcome Loop()
    {
        var c = _s.Config;
        int perEpoch = _s.Loader.BatchesPerEpoch;
        var sw = Stopwatch.StartNew();
        long stepsThisRun = 0;
        var lastLog = Stopwatch.StartNew();
        long imagesSinceLog = 0;
        while (Step < _s.TotalSteps && !StopAgreed())
        {
            int epoch = (int)(Step / perEpoch);
            int startBatch = (int)(Step % perEpoch);
            foreach (var batch in _s.Loader.Epoch(epoch, startBatch))
            {
                DataParallel.DistributedTraining.BeforeStep(_s, Step); // [distributed] test-only fault injection
                var row = TrainStep(batch, epoch + (double)(Step % perEpoch) / perEpoch, Step % c.Train.LogEvery == 0);
                Step++;
                stepsThisRun++;
                imagesSinceLog += batch.N;
                if (row != null)
                {
                    double secs = lastLog.Elapsed.TotalSeconds;
                    row["images_per_s"] = secs > 0 ? imagesSinceLog / secs : 0;
                    row["memory_mb"] = _s.Device.Pool.BytesInUse / 1048576.0;
                    DataParallel.DistributedTraining.ReduceRow(_s, row); // [distributed] mean over ranks, images/s summed
                    if (_primary) _log.Row(row);
                    _tb?.Row(row);
                    double eta = stepsThisRun > 0 ? sw.Elapsed.TotalSeconds / stepsThisRun * (_s.TotalSteps - Step) : 0;
                    if (_progress != null) _progress.Update(Step, _s.TotalSteps, epoch + 1, row, eta);
                    else Say(Reporting.TrainingProgress.PlainLine(Step, _s.TotalSteps, epoch + 1, row, eta));
                    lastLog.Restart();
                    imagesSinceLog = 0;
                }
                if (Step >= _s.TotalSteps || StopAgreed()) break;
            }
            bool epochDone = Step % perEpoch == 0 || Step >= _s.TotalSteps;
            int done = (int)((Step + perEpoch - 1) / perEpoch);
            if (_stopNow) return Stopped(done);
            if (epochDone)
            {
                bool last = Step >= _s.TotalSteps;
                if (last || c.Train.EvalEvery > 0 && done % c.Train.EvalEvery == 0) Evaluate(done);
                if (last || c.Train.CheckpointEvery > 0 && done % c.Train.CheckpointEvery == 0) SaveCheckpoint(LastCkpt, done);
            }
        }
        // a stop that came during the epoch-end evaluation or checkpoint (or before the first step)
        // ends the loop too: it is a stop unless every step has been trained
        if (_stopNow && Step < _s.TotalSteps) return Stopped((int)((Step + perEpoch - 1) / perEpoch));
        EnsureFinite();
        if (Step >= _s.TotalSteps && _primary) WriteDistanceFigure();
        return TrainOutcome.Completed;
    }

    bool _stopNow;

    /// <summary>
    /// Whether the run stops here: a stop was requested (on any rank). [distributed] A signal reaches
    /// the ranks at different moments, so they agree at each point where the loop may end (one
    /// all-reduce of the request, the same points on every rank): every rank finishes the same step,
    /// and rank 0 writes last.ckpt.
    /// </summary>
    bool StopAgreed()
    {
        if (_stopNow) return true;
        string? reason = _stopReason;
        if (_s.Dist.IsDistributed)
            reason = DataParallel.DistributedTraining.AgreeOnStop(_s, reason);
        if (reason == null) return false;
        _stopReason ??= reason;
        return _stopNow = true;
    }

    /// <summary>After a resume with another batch size or rank count the step numbers count other
    /// batches: the rows so far move to metrics.before-step-N.csv and metrics.csv starts again at the
    /// resumed step, so each file holds each step once, in order.</summary>
    void KeepOldMetrics()
    {
        if (!File.Exists(_log.MetricsCsv)) return;
        string kept = Path.Combine(_dir, $"metrics.before-step-{_truncateAt}.csv");
        for (int i = 2; File.Exists(kept); i++) kept = Path.Combine(_dir, $"metrics.before-step-{_truncateAt}-{i}.csv");
        File.Move(_log.MetricsCsv, kept);
        _log = new RunLog(_dir);
        Say($"metrics.csv: its steps 0-{_truncateAt - 1} counted batches of another size; kept as {kept}, and this run logs from step {Step} in a new metrics.csv");
    }

    /// <summary>The end of a stopped run: last.ckpt holds every step taken (written again only
    /// when the last one is older).</summary>
    TrainOutcome Stopped(int epochsDone)
    {
        if (_savedAt != Step) SaveCheckpoint(LastCkpt, epochsDone);
        Say($"stopped ({_stopReason}) after {Step} steps: wrote {LastCkpt}");
        return TrainOutcome.Stopped;
    }

    /// <summary>Closes the live display and draws the plots of the run folder.</summary>
    void Finish()
    {
        _progress?.Dispose();
        _progress = null;
        _tb?.Dispose();
        _tb = null;
        if (!_primary) return;
        try
        {
            var plots = Reporting.RunPlots.Write(_dir);
            if (plots.Count > 0 && !Reporting.RunPlots.HasFont)
                Say("note: no system font found, the plots have no text (apt-get install fonts-dejavu-core)");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TypeInitializationException or DllNotFoundException)
        {
            Say($"plots not written: {e.Message}");
        }
    }

    /// <summary>Positive / negative pair distances on the validation set (the paper's Figures 1 and
    /// 5): distances.json, and plots/distances.png for this model alone (ablate draws baseline
    /// against CCR).</summary>
    void WriteDistanceFigure()
    {
        var pairs = DistanceSamples.DefaultPairs(_s.Config.Tasks);
        if (pairs.Count == 0) return;
        var samples = DistanceSamples.Collect(_s, pairs, images: Math.Min(32, _s.ValSet.Count));
        DistanceSamples.Save(Path.Combine(_dir, "distances.json"), samples);
        try
        {
            Directory.CreateDirectory(Path.Combine(_dir, "plots"));
            foreach (var p in samples)
                Reporting.DistanceHistograms.Write(Path.Combine(_dir, "plots", $"distances_{p.Target}_{p.Source}.png"),
                    $"{p.Target} features, {p.Source} labels", [(_s.Config.Name, p.Pos, p.Neg)]);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TypeInitializationException or DllNotFoundException)
        {
            Say($"distance figure not written: {e.Message}");
        }
    }

    /// <summary>How the most recent <see cref="TrainStep"/> ran (eager, captured, replayed).</summary>
    internal StepMode LastStepMode { get; private set; }
    /// <summary>Replays the kept launches of the CUDA variant on the CPU accelerator as if they were CUDA
    /// graphs (tests of the capture without a GPU; <see cref="StepGraphs"/>).</summary>
    public bool EmulateCudaGraphs { get; init; }
    bool _graphsChecked;

    /// <summary>One optimisation step on <paramref name="batch"/> (forward, task losses, CCR, backward,
    /// finite check, optimiser update); returns the log row when <paramref name="log"/> (reading the
    /// losses back then, and only then). Run() calls it; so does the training-step benchmark.</summary>
    /// <remarks>
    /// Host work first, device work after: the batch is packed into pinned memory, the step's
    /// host decisions are made (the learning rate and Adam's bias corrections, the CCR lambda, the
    /// saliency weights: <see cref="TrainSession.Scalars"/>; CCR's task pairs, which choose the
    /// kernels), batch and scalars go up as one asynchronous copy into fixed device buffers, then the body only launches kernels: no host copy (it would throw), no
    /// scalar argument that changes between steps, nothing from the pool that an earlier step of
    /// the same shape did not return. So on a CUDA device the body is captured as a CUDA graph and
    /// replayed (<see cref="StepGraphs"/>, <c>train.cuda_graph</c>), keyed by the batch shape, the
    /// precision and the pairs; logging steps run it eagerly, as they read the CCR statistics.
    /// </remarks>
    public Dictionary<string, double>? TrainStep(Batch batch, double epoch, bool log)
    {
        var c = _s.Config;
        var db = Stage(batch);
        _s.Optimizer.Lr = (float)_s.Schedule.At(Step);
        _s.Optimizer.PrepareUpdate();
        _s.CcrLoss?.SetLambda(epoch);
        if (_s.SaliencyWeights is { } sal)
        {
            var w = TaskHeads.SaliencyWeights(db.SaliencyNegativeShare);
            sal[0] = w[0]; sal[1] = w[1];
        }
        db.Commit(); // the batch and the scalars: one asynchronous copy (StepUpload)
        var pairs = _s.CcrLoss?.NextPairs(c.Tasks);

        CcrDiagnostics? diag = null;
        // only logging steps read values back; [distributed] the all-reduce goes through host memory
        bool quiet = !log && !_s.Dist.IsDistributed;
        void Body()
        {
            using (quiet ? HostCopies.Forbid("a training step (only logging steps read values back)") : null)
                diag = StepBody(db, pairs, epoch, resolve: log);
        }
        if (Graphs() is { } graphs)
        {
            string key = $"{batch.N}x{batch.Height}x{batch.Width}|{_s.ComputePrecision}|" +
                         string.Join(",", pairs?.Select(p => p.Target + "<" + p.Source) ?? []);
            LastStepMode = graphs.Run(key, Body, eager: log, _bnCounters ??= BatchNormCounters());
        }
        else
        {
            Body();
            LastStepMode = StepMode.Eager;
        }

        if (RecordStepLosses) StepLosses.Add(_s.Guard.Read().Terms[^1]); // the total, as the guard copied it
        if (!log) return null;
        var terms = CheckFinite(Step);
        var row = new Dictionary<string, double> { ["step"] = Step, ["epoch"] = epoch, ["lr"] = _s.Optimizer.Lr, ["loss"] = terms[^1] };
        for (int i = 0; i < c.Tasks.Count; i++) row["loss_" + c.Tasks[i]] = terms[i];
        if (diag != null)
        {
            row["ccr"] = terms[c.Tasks.Count];
            row["ccr_pos_dist"] = diag.Pairs.Count > 0 ? diag.Pairs.Average(p => p.MeanPosDist) : 0;
            row["ccr_neg_dist"] = diag.Pairs.Count > 0 ? diag.Pairs.Average(p => p.MeanNegDist) : 0;
            row["ccr_valid_anchors"] = diag.Pairs.Count > 0 ? diag.Pairs.Average(p => p.ValidAnchorFraction) : 0;
            row["ccr_anchors_per_image"] = diag.Pairs.Count > 0 ? diag.Pairs.Average(p => (double)p.AnchorsSampled) / batch.N : 0;
        }
        return row;
    }

    /// <summary>The device work of one step (launches only); resolves the CCR statistics when asked
    /// (a host read: logging steps, which run eagerly).</summary>
    CcrDiagnostics? StepBody(DeviceBatch db, List<(string Target, string Source)>? pairs, double epoch, bool resolve)
    {
        var c = _s.Config;
        using var scope = new TensorScope();
        if (_s.CcrLoss != null) db.MakeCcrLabels();
        try
        {
            var outputs = _s.Model.Forward(db.Images);
            var losses = new List<Tensor>();
            var weights = new List<float>();
            foreach (var t in c.Tasks)
            {
                losses.Add(TaskHeads.Loss(t, outputs[t].Prediction, db, _s.Info.EdgePosWeight));
                weights.Add(c.LossWeights.TryGetValue(t, out var w) ? w : 1f);
            }
            CcrDiagnostics? diag = null;
            if (_s.CcrLoss != null)
            {
                (var ccrLoss, diag) = _s.CcrLoss.Forward(outputs.ToDictionary(o => o.Key, o => o.Value.Features), db.CcrLabels, pairs!, epoch);
                losses.Add(ccrLoss);
                weights.Add(1f); // lambda (with its ramp) is applied inside the regulariser
            }
            var total = F.WeightedSum(losses, weights);
            _s.Optimizer.ZeroGrad();
            DataParallel.DistributedTraining.Backward(_s, total); // [distributed] gradients averaged over ranks
            // the gradients are complete (and all-reduced) here: check them before the update
            _s.Guard.Record([.. losses, total], _s.Arena.Grads);
            _s.Optimizer.LaunchUpdate(); // skipped on the device when the guard tripped
            if (resolve) diag?.Resolve();
            return diag;
        }
        finally
        {
            db.DisposeCcrLabels();
        }
    }

    /// <summary>The batch in the session's fixed device buffers (made for the first batch, and again
    /// when the shape changes).</summary>
    DeviceBatch Stage(Batch batch)
    {
        if (_s.Staging is not { } db || !db.Fits(batch))
        {
            _s.Staging?.Dispose();
            _s.Staging = db = DeviceBatch.Staging(_s.Device, batch, _s.Config.Tasks, _s.Info, _s.Scalars);
            db.SaliencyWeights = _s.SaliencyWeights?.Data ?? default;
        }
        db.Pack(batch); // into pinned memory; TrainStep commits it with the step's scalars
        return db;
    }

    /// <summary>The session's CUDA graphs, made on the first step when they apply: a CUDA device (or
    /// <see cref="EmulateCudaGraphs"/>), <c>train.cuda_graph</c> on, one process (the data-parallel
    /// all-reduce goes through the host).</summary>
    StepGraphs? Graphs()
    {
        if (_graphsChecked) return _s.Graphs;
        _graphsChecked = true;
        if (_s.Graphs == null && _s.Config.Train.CudaGraph && !_s.Dist.IsDistributed && (_s.Device.IsCuda || EmulateCudaGraphs))
            _s.Graphs = StepGraphs.Create(_s.Device, Say, emulate: EmulateCudaGraphs);
        return _s.Graphs;
    }

    HostCounters? _bnCounters;

    /// <summary>Batch norm's num_batches_tracked (host counters a replayed step must advance too).</summary>
    HostCounters BatchNormCounters()
    {
        var bns = new List<BatchNorm2d>();
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        void Walk(Module m)
        {
            if (!seen.Add(m)) return;
            if (m is BatchNorm2d bn) bns.Add(bn);
            foreach (var (_, child) in m.Children()) Walk(child);
        }
        Walk(_s.Root);
        return new HostCounters(() => bns.Select(b => b.NumBatchesTracked).ToArray(),
                                v => { for (int i = 0; i < bns.Count; i++) bns[i].NumBatchesTracked = v[i]; });
    }

    /// <summary>Every step so far was finite (throws otherwise): before evaluations and checkpoints.</summary>
    void EnsureFinite()
    {
        if (Step > 0) CheckFinite(Step - 1);
    }

    /// <summary>
    /// Reads the guard after step <paramref name="lastStep"/> (a host synchronisation) and returns
    /// that step's loss terms; a non-finite term or gradient at any step since the run started
    /// throws a <see cref="NonFiniteException"/> naming the first bad step and term, the steps whose
    /// updates were skipped, and the last good checkpoint.
    /// </summary>
    float[] CheckFinite(long lastStep)
    {
        var s = _s.Guard.Read();
        if (!s.Tripped) return s.Terms;
        var names = _s.LossTermNames;
        string term = s.FirstBadTerm < names.Count
            ? names[s.FirstBadTerm] switch { "total" => "the total loss", "ccr" => "the CCR loss", var t => $"the {t} loss" }
            : "the gradients" + (s.FirstBadStep == lastStep ? FirstNonFiniteGradient() : "");
        string when = s.FirstBadStep == lastStep
            ? $"at step {s.FirstBadStep} (its update was skipped)"
            : $"at step {s.FirstBadStep} (found at step {lastStep}; the updates of steps {s.FirstBadStep}-{lastStep} were skipped)";
        throw new NonFiniteException($"training diverged: {term} became non-finite {when}, so the weights in memory are those after step " +
            $"{s.FirstBadStep - 1} and nothing was written; {LastGoodCheckpoint()}. Try a lower train.lr (now {_s.Config.Train.Lr:G3}).",
            s.FirstBadTerm < names.Count ? names[s.FirstBadTerm] : "gradients");
    }

    /// <summary>" (first: the gradient of NAME)" from the arena, which still holds the bad step's gradients.</summary>
    string FirstNonFiniteGradient()
    {
        var g = _s.Arena.Grads.ToArray();
        int i = Array.FindIndex(g, v => !float.IsFinite(v));
        if (i < 0) return "";
        var offsets = _s.Arena.Offsets;
        int p = 0;
        while (p + 1 < offsets.Count && offsets[p + 1] <= i) p++;
        var param = _s.Arena.Parameters[p];
        string name = _s.Root.NamedParameters().FirstOrDefault(n => ReferenceEquals(n.Tensor, param)).Name ?? param.Name ?? $"parameter {p}";
        return $" (first: the gradient of {name})";
    }

    string LastGoodCheckpoint() => _lastCkptStep is long step
        ? $"the last good checkpoint is {LastCkpt} (step {step})"
        : "no checkpoint has been written yet";

    public Dictionary<string, Dictionary<string, double>> Evaluate(int epoch)
    {
        EnsureFinite();
        var c = _s.Config;
        var sw = Stopwatch.StartNew();
        var metrics = Evaluator.Run(_s, _s.ValSet, c.Eval.BatchSize,
            c.Eval.SavePredictions ? new PredictionWriter(Path.Combine(_dir, "predictions")) : null);
        double? dm = null;
        if (!string.IsNullOrEmpty(c.Eval.Baseline))
        {
            dm = EvalFiles.DeltaM(metrics, c.Eval.Baseline);
        }
        LastEval = metrics;
        Say($"eval after epoch {epoch} ({sw.Elapsed.TotalSeconds:F1} s): " + Summary(metrics, dm));
        // best.ckpt by delta_m with a baseline, else by eval.metric (a metric of a trained task, in its own direction)
        string metric = string.IsNullOrEmpty(c.Eval.Metric) ? EvalMetrics.Default(c.Tasks) : c.Eval.Metric;
        double score = dm ?? MetricValue(metrics, metric);
        bool lowerBetter = dm == null && EvalMetrics.LowerIsBetter(metric);
        if (double.IsNaN(BestMetric) || (lowerBetter ? score < BestMetric : score > BestMetric))
        {
            BestMetric = score;
            SaveCheckpoint(BestCkpt, epoch);
        }
        // after best.ckpt: a write that fails (full disk) leaves eval.json describing the checkpoints that exist
        if (_primary)
        {
            RunLog.WriteEval(Path.Combine(_dir, "eval.json"), metrics, dm);
            RunLog.WriteEval(Path.Combine(_dir, $"eval-epoch{epoch:D3}.json"), metrics, dm);
            _tb?.Eval(Step - 1, metrics, dm); // at the last step trained (see TensorBoardLog)
            _tb?.Predictions(Step - 1, _s.Model, _s.Device, _s.ValSet);
        }
        return metrics;
    }

    /// <summary>eval.json's value of task.metric; the key was checked against the trained tasks when
    /// the config was loaded.</summary>
    static double MetricValue(Dictionary<string, Dictionary<string, double>> m, string key)
    {
        var parts = key.Split('.', 2);
        if (m.TryGetValue(parts[0], out var t) && t.TryGetValue(parts[1], out var v)) return v;
        throw new InvalidOperationException($"eval.metric {key}: not in the evaluation's results ({string.Join(", ", m.Keys)})");
    }

    public static string Summary(Dictionary<string, Dictionary<string, double>> m, double? dm)
    {
        var parts = m.Select(kv => $"{kv.Key} {TaskInfo.MainMetric(kv.Key)} {kv.Value.GetValueOrDefault(TaskInfo.MainMetric(kv.Key)):F4}").ToList();
        if (dm is double d) parts.Add($"delta_m {d:F2}%");
        return string.Join(", ", parts);
    }

    /// <summary>Writes a checkpoint after checking that every step so far was finite; a non-finite
    /// tensor (batch-norm running statistics) stops the run instead, the old file left in place.</summary>
    void SaveCheckpoint(string path, int epoch)
    {
        EnsureFinite();
        var extra = DataParallel.DistributedTraining.CheckpointExtra(_s); // [distributed] collective: rank layout, every rank's RNG
        if (!_primary)
        {
            if (path == LastCkpt) _savedAt = Step;
            return;
        }
        var opt = _s.Optimizer;
        var rng = _s.CcrLoss?.SamplingRng ?? new Rng(0);
        try
        {
            Checkpoint.Save(path, _s.Root, new TrainingState
            {
                Extra = extra,
                Step = Step,
                Epoch = epoch,
                RngState = rng.State,
                RngInc = rng.Inc,
                BestMetric = BestMetric,
                Config = ConfigLoader.ToYaml(_s.Config),
                OptimizerTensors = opt.StateTensors().ToDictionary(t => t.Name, t => t.Value),
                OptimizerScalars = new Dictionary<string, double> { ["step"] = opt.Step },
            }, CheckpointStream);
        }
        catch (NonFiniteException e)
        {
            throw new NonFiniteException($"training diverged by step {Step - 1} although every loss and gradient was finite: {e.Message}; " +
                $"{LastGoodCheckpoint()}. Try a lower train.lr (now {_s.Config.Train.Lr:G3}).", e.Op);
        }
        if (path == LastCkpt) _lastCkptStep = _savedAt = Step;
        if (!_configWritten) WriteConfig();
    }

    bool _configWritten;

    void WriteConfig()
    {
        File.WriteAllText(Path.Combine(_dir, "config.yaml"), ConfigLoader.ToYaml(_s.Config));
        _configWritten = true;
    }
}
