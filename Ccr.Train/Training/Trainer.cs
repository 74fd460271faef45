using System.Diagnostics;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Nn.IO;
using Ccr.Train.Config;
using Ccr.Train.Data;
using Ccr.Train.Metrics;

namespace Ccr.Train.Training;

/// <summary>
/// The training loop: one TensorScope per step (forward, task losses, the regulariser, backward,
/// one fused optimiser launch), metrics.csv every log_every steps, evaluation and checkpoints at
/// epoch ends. Resumable bit for bit: the data order and augmentation are pure functions of
/// (seed, epoch, index), and the checkpoint holds the parameters, buffers, optimiser state and the
/// regulariser's sampling RNG.
/// </summary>
public sealed class Trainer
{
    readonly TrainSession _s;
    readonly RunLog _log;
    readonly string _dir;
    readonly Action<string> _print;
    readonly Reporting.TrainingProgress? _progress;
    volatile bool _stopRequested;

    public long Step { get; private set; }
    public double BestMetric { get; private set; } = double.NaN;
    /// <summary>Total loss of every step run by this trainer (for tests of resumption).</summary>
    public List<float> StepLosses { get; } = new();
    public Dictionary<string, Dictionary<string, double>>? LastEval { get; private set; }

    public string LastCkpt => Path.Combine(_dir, "last.ckpt");
    public string BestCkpt => Path.Combine(_dir, "best.ckpt");

    public Trainer(TrainSession session, string runDir, Action<string>? print = null)
    {
        _s = session;
        _dir = runDir;
        _log = new RunLog(runDir);
        if (print == null)
        {
            _progress = new Reporting.TrainingProgress();
            _print = _progress.Message;
        }
        else _print = print;
        File.WriteAllText(Path.Combine(runDir, "config.yaml"), ConfigLoader.ToYaml(session.Config));
    }

    /// <summary>Stops after the current step, writing last.ckpt (Ctrl-C).</summary>
    public void RequestStop() => _stopRequested = true;

    public void Resume()
    {
        if (!File.Exists(LastCkpt)) throw new Cli.UsageException($"--resume: no {LastCkpt} to resume from");
        var opt = _s.Optimizer;
        var state = Checkpoint.Load(LastCkpt, _s.Root, opt.StateTensors().ToDictionary(t => t.Name, t => t.Value));
        opt.LoadState(state.Step, opt.StateTensors().ToDictionary(t => t.Name, t => t.Value.ToArray()));
        Step = state.Step;
        BestMetric = state.BestMetric;
        if (_s.Ccr != null) _s.Ccr.SamplingRng = state.RestoreRng();
        _log.TruncateAfter(Step);
        _print($"resumed from {LastCkpt} at step {Step} (epoch {state.Epoch})");
    }

    /// <summary>Trains until the configured epochs (or max_steps) are done or a stop is requested.</summary>
    public void Run()
    {
        var c = _s.Config;
        int perEpoch = _s.Loader.BatchesPerEpoch;
        var sw = Stopwatch.StartNew();
        long stepsThisRun = 0;
        var lastLog = Stopwatch.StartNew();
        long imagesSinceLog = 0;
        while (Step < _s.TotalSteps && !_stopRequested)
        {
            int epoch = (int)(Step / perEpoch);
            int startBatch = (int)(Step % perEpoch);
            foreach (var batch in _s.Loader.Epoch(epoch, startBatch))
            {
                var row = TrainStep(batch, epoch + (double)(Step % perEpoch) / perEpoch, Step % c.Train.LogEvery == 0);
                Step++;
                stepsThisRun++;
                imagesSinceLog += batch.N;
                if (row != null)
                {
                    double secs = lastLog.Elapsed.TotalSeconds;
                    row["images_per_s"] = secs > 0 ? imagesSinceLog / secs : 0;
                    row["memory_mb"] = _s.Device.Pool.BytesInUse / 1048576.0;
                    _log.Row(row);
                    double eta = stepsThisRun > 0 ? sw.Elapsed.TotalSeconds / stepsThisRun * (_s.TotalSteps - Step) : 0;
                    if (_progress != null) _progress.Update(Step, _s.TotalSteps, epoch + 1, row, eta);
                    else _print(Reporting.TrainingProgress.PlainLine(Step, _s.TotalSteps, epoch + 1, row, eta));
                    lastLog.Restart();
                    imagesSinceLog = 0;
                }
                if (Step >= _s.TotalSteps || _stopRequested) break;
            }
            bool epochDone = Step % perEpoch == 0 || Step >= _s.TotalSteps;
            int done = (int)((Step + perEpoch - 1) / perEpoch);
            if (_stopRequested) { SaveCheckpoint(LastCkpt, done); _print($"stopped: wrote {LastCkpt}"); Finish(); return; }
            if (epochDone)
            {
                bool last = Step >= _s.TotalSteps;
                if (last || c.Train.EvalEvery > 0 && done % c.Train.EvalEvery == 0) Evaluate(done);
                if (last || c.Train.CheckpointEvery > 0 && done % c.Train.CheckpointEvery == 0) SaveCheckpoint(LastCkpt, done);
            }
        }
        if (Step >= _s.TotalSteps) WriteDistanceFigure();
        Finish();
    }

    /// <summary>Closes the live display and draws the plots of the run folder.</summary>
    void Finish()
    {
        _progress?.Dispose();
        try
        {
            var plots = Reporting.RunPlots.Write(_dir);
            if (plots.Count > 0 && !Reporting.RunPlots.HasFont)
                _print("note: no system font found, the plots have no text (apt-get install fonts-dejavu-core)");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TypeInitializationException or DllNotFoundException)
        {
            _print($"plots not written: {e.Message}");
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
            _print($"distance figure not written: {e.Message}");
        }
    }

    /// <summary>One optimisation step on <paramref name="batch"/> (forward, task losses, CCR, backward,
    /// optimiser update); returns the log row when <paramref name="log"/>. Run() calls it; so does the
    /// training-step benchmark.</summary>
    public Dictionary<string, double>? TrainStep(Batch batch, double epoch, bool log)
    {
        var c = _s.Config;
        using var scope = new TensorScope();
        var db = DeviceBatch.Create(_s.Device, batch, c.Tasks, _s.Info, _s.Ccr != null);
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
            global::Ccr.Nn.Ccr.CcrDiagnostics? diag = null;
            Tensor? ccrLoss = null;
            if (_s.Ccr != null)
            {
                (ccrLoss, diag) = _s.Ccr.Forward(outputs.ToDictionary(o => o.Key, o => o.Value.Features), db.CcrLabels, epoch);
                losses.Add(ccrLoss);
                weights.Add(1f); // lambda (with its ramp) is applied inside the regulariser
            }
            var total = F.WeightedSum(losses, weights);
            _s.Optimizer.ZeroGrad();
            total.Backward();
            _s.Optimizer.Lr = (float)_s.Schedule.At(Step);
            _s.Optimizer.Update();

            // Reading the loss synchronises; do it every step so a NaN stops the run at once.
            float totalValue = CheckFinite(total, "total loss", losses, c.Tasks);
            StepLosses.Add(totalValue);
            if (!log) return null;
            var row = new Dictionary<string, double> { ["step"] = Step, ["epoch"] = epoch, ["lr"] = _s.Optimizer.Lr, ["loss"] = totalValue };
            for (int i = 0; i < c.Tasks.Count; i++) row["loss_" + c.Tasks[i]] = losses[i].Item();
            if (ccrLoss != null && diag != null)
            {
                row["ccr"] = ccrLoss.Item();
                var resolved = diag.Resolve();
                row["ccr_pos_dist"] = resolved.Pairs.Count > 0 ? resolved.Pairs.Average(p => p.MeanPosDist) : 0;
                row["ccr_neg_dist"] = resolved.Pairs.Count > 0 ? resolved.Pairs.Average(p => p.MeanNegDist) : 0;
                row["ccr_valid_anchors"] = resolved.Pairs.Count > 0 ? resolved.Pairs.Average(p => p.ValidAnchorFraction) : 0;
                row["ccr_anchors_per_image"] = resolved.Pairs.Count > 0 ? resolved.Pairs.Average(p => (double)p.AnchorsSampled) / batch.N : 0;
            }
            return row;
        }
        finally
        {
            db.DisposeCcrLabels();
        }
    }

    /// <summary>The total loss as a float; NaN or infinity names the task that produced it and stops
    /// the run with the last good checkpoint left in place.</summary>
    float CheckFinite(Tensor total, string name, List<Tensor> parts, List<string> tasks)
    {
        float v = total.Data.ToArray()[0];
        if (float.IsFinite(v)) return v;
        string culprit = "?";
        for (int i = 0; i < parts.Count; i++)
            if (!float.IsFinite(parts[i].Data.ToArray()[0])) { culprit = i < tasks.Count ? tasks[i] + " loss" : "ccr loss"; break; }
        throw new NonFiniteException($"step {Step}: {name} is {v} (first non-finite term: {culprit}); " +
            $"the last good checkpoint is {LastCkpt}", culprit);
    }

    public Dictionary<string, Dictionary<string, double>> Evaluate(int epoch)
    {
        var c = _s.Config;
        var sw = Stopwatch.StartNew();
        var metrics = Evaluator.Run(_s, _s.ValSet, c.Eval.BatchSize,
            c.Eval.SavePredictions ? new PredictionWriter(Path.Combine(_dir, "predictions")) : null);
        double? dm = null;
        if (!string.IsNullOrEmpty(c.Eval.Baseline))
        {
            dm = EvalFiles.DeltaM(metrics, c.Eval.Baseline);
        }
        RunLog.WriteEval(Path.Combine(_dir, "eval.json"), metrics, dm);
        RunLog.WriteEval(Path.Combine(_dir, $"eval-epoch{epoch:D3}.json"), metrics, dm);
        LastEval = metrics;
        _print($"eval after epoch {epoch} ({sw.Elapsed.TotalSeconds:F1} s): " + Summary(metrics, dm));
        double score = dm ?? MetricValue(metrics, c.Eval.Metric);
        bool lowerBetter = dm == null && IsLowerBetter(c.Eval.Metric);
        if (double.IsNaN(BestMetric) || (lowerBetter ? score < BestMetric : score > BestMetric))
        {
            BestMetric = score;
            SaveCheckpoint(BestCkpt, epoch);
        }
        return metrics;
    }

    static bool IsLowerBetter(string metric) =>
        metric.StartsWith("depth.") && !metric.Contains("delta") || metric is "normals.mean" or "normals.median" or "normals.rmse";

    static double MetricValue(Dictionary<string, Dictionary<string, double>> m, string key)
    {
        var parts = key.Split('.', 2);
        if (parts.Length == 2 && m.TryGetValue(parts[0], out var t) && t.TryGetValue(parts[1], out var v)) return v;
        var first = m.First();
        return first.Value.TryGetValue(TaskInfo.MainMetric(first.Key), out var fv) ? fv : double.NaN;
    }

    public static string Summary(Dictionary<string, Dictionary<string, double>> m, double? dm)
    {
        var parts = m.Select(kv => $"{kv.Key} {TaskInfo.MainMetric(kv.Key)} {kv.Value.GetValueOrDefault(TaskInfo.MainMetric(kv.Key)):F4}").ToList();
        if (dm is double d) parts.Add($"delta_m {d:F2}%");
        return string.Join(", ", parts);
    }

    void SaveCheckpoint(string path, int epoch)
    {
        var opt = _s.Optimizer;
        var rng = _s.Ccr?.SamplingRng ?? new global::Ccr.Nn.Rng(0);
        Checkpoint.Save(path, _s.Root, new TrainingState
        {
            Step = Step,
            Epoch = epoch,
            RngState = rng.State,
            RngInc = rng.Inc,
            BestMetric = BestMetric,
            Config = ConfigLoader.ToYaml(_s.Config),
            OptimizerTensors = opt.StateTensors().ToDictionary(t => t.Name, t => t.Value),
            OptimizerScalars = new Dictionary<string, double> { ["step"] = opt.Step },
        });
    }
}
