using Ccr.Nn.IO;
using Ccr.Train.Commands;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>eval and infer with bad input: each a one-line error and a documented exit code; and
/// both need only the checkpoint and the images (no training set, no optimiser).</summary>
public class CheckpointErrorTests(TrainedRun trained) : IClassFixture<TrainedRun>, IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    string Damaged(string name, Action<string> damage)
    {
        string path = Path.Combine(_tmp.Dir("ckpt"), name);
        File.Copy(trained.Ckpt, path);
        damage(path);
        return path;
    }

    [Fact]
    public void TruncatedRandomAndForeignCheckpointsAreRefusedInOneLine()
    {
        string truncated = Damaged("truncated.ckpt", p => { var b = File.ReadAllBytes(p); File.WriteAllBytes(p, b[..(b.Length / 2)]); });
        Cli.AssertError(Cli.Run("eval", "--checkpoint", truncated), ExitCodes.BadCheckpoint, truncated, "not a readable checkpoint", "truncated");

        string random = Damaged("random.ckpt", p => File.WriteAllBytes(p, Enumerable.Range(0, 5000).Select(i => (byte)(i * 7919 % 251)).ToArray()));
        Cli.AssertError(Cli.Run("eval", "--checkpoint", random), ExitCodes.BadCheckpoint, random, "not a readable checkpoint");
        Cli.AssertError(Cli.Run("infer", "--checkpoint", random, "--images", trained.Images), ExitCodes.BadCheckpoint, random);

        string weights = Path.Combine(_tmp.Dir("ckpt"), "weights.safetensors");
        SafeTensors.Write(weights, [("w", HostTensor.FromFloats([1f, 2f], 2))]);
        Cli.AssertError(Cli.Run("eval", "--checkpoint", weights), ExitCodes.BadCheckpoint, weights, "not a Ccr checkpoint");

        string missing = Path.Combine(_tmp.Dir("ckpt"), "none.ckpt");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", missing), ExitCodes.BadCheckpoint, missing, "not found");
    }

    [Fact]
    public void ACheckpointOfAnotherModelIsRefusedNamingWhatDiffers()
    {
        var r = Cli.Run("eval", "--checkpoint", trained.Ckpt, "--set", "model.head=fpn", "--out", _tmp.Dir("other"));
        Cli.AssertError(r, ExitCodes.BadCheckpoint, trained.Ckpt, "does not match this model", "missing (", "unexpected (", "model.model.fpn.");
    }

    [Fact]
    public void EvalRefusesACheckpointHoldingNonFiniteValues()
    {
        // written by hand: Checkpoint.Save itself refuses to write one
        string bad = Damaged("nan.ckpt", p =>
        {
            var f = SafeTensors.Read(p);
            string victim = f.Names.First(n => n.EndsWith("running_var"));
            var tensors = f.Names.Select(n =>
            {
                if (n != victim) return (n, f.Tensors[n]);
                var v = f.Tensors[n].ToFloats();
                v[0] = float.PositiveInfinity; v[^1] = float.NaN;
                return (n, HostTensor.FromFloats(v, f.Tensors[n].Shape));
            }).ToList();
            SafeTensors.Write(p, tensors, f.Metadata);
        });
        string line = Cli.AssertError(Cli.Run("eval", "--checkpoint", bad, "--out", _tmp.Dir("nan")), ExitCodes.BadCheckpoint,
            bad, "2 non-finite values", "running_var");
        Assert.Contains("unusable", line);
    }

    [Fact]
    public void EvalChecksItsOptionsBeforeEvaluating()
    {
        string outDir = Path.Combine(_tmp.Dir("opts"), "out");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--limit", "0", "--out", outDir), ExitCodes.Usage, "--limit must be at least 1");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--limit", "-3", "--out", outDir), ExitCodes.Usage, "--limit");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--baseline", "/nonexistent/st.json", "--out", outDir),
            ExitCodes.Usage, "--baseline /nonexistent/st.json", "not found");
        string other = Path.Combine(_tmp.Dir("opts"), "st.json");
        File.WriteAllText(other, """{"edge": {"odsF": 0.5}}""");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--baseline", other, "--out", outDir),
            ExitCodes.Usage, "holds none of the tasks");
        Cli.AssertError(Cli.Run("eval", "--checkpoint", trained.Ckpt, "--split", "test", "--out", outDir), ExitCodes.Usage, "--split");
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void InferNeedsOnlyTheCheckpointAndTheImages()
    {
        // the run's dataset path points nowhere: infer must neither open nor generate it
        string root = _tmp.Dir("infer-only");
        string noData = Path.Combine(root, "no-data"), pics = Path.Combine(root, "pics");
        var r = Cli.Run("infer", "--checkpoint", trained.Ckpt, "--images", trained.Images, "--out", pics, "--set", "data.path=" + noData);
        Assert.True(r.Code == 0, r.Err);
        Assert.False(Directory.Exists(noData), "infer touched the dataset");
        Assert.Equal(Directory.GetFiles(trained.Images, "*.png").Length, Directory.GetFiles(pics, "*.png").Length);
    }

    [Fact]
    public void InferSkipsUnreadableImagesAndWritesTheGoodOnes()
    {
        string root = _tmp.Dir("infer-bad");
        string images = Path.Combine(root, "images"), pics = Path.Combine(root, "pics");
        Directory.CreateDirectory(images);
        var good = Directory.GetFiles(trained.Images, "*.png").Order().Take(2).ToArray();
        foreach (var g in good) File.Copy(g, Path.Combine(images, Path.GetFileName(g)));
        var bytes = File.ReadAllBytes(good[0]);
        File.WriteAllBytes(Path.Combine(images, "0-truncated.png"), bytes[..(bytes.Length / 3)]);
        File.WriteAllBytes(Path.Combine(images, "zz-noise.jpg"), Enumerable.Range(0, 999).Select(i => (byte)(i * 31)).ToArray());

        var r = Cli.Run("infer", "--checkpoint", trained.Ckpt, "--images", images, "--out", pics);
        Cli.AssertError(r, ExitCodes.DataError, "2 of 4 images could not be read", "2 written");
        Assert.Contains("0-truncated.png", r.Err);
        Assert.Contains("zz-noise.jpg", r.Err);
        Assert.Equal(good.Select(Path.GetFileName).Order(), Directory.GetFiles(pics).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void RunningOutOfDeviceMemoryInEvalOrInferIsOneLineWithAHint()
    {
        // a pool limit that holds the model but not a batch of activations (CCR_MEMORY_LIMIT_MB)
        string outDir = _tmp.Dir("oom");
        try
        {
            Environment.SetEnvironmentVariable("CCR_MEMORY_LIMIT_MB", "1.5");
            var e = Cli.Run("eval", "--checkpoint", trained.Ckpt, "--out", outDir);
            Cli.AssertError(e, ExitCodes.OutOfMemory, "out of memory", "limit of 1.5 MiB", "try --set eval.batch_size=");
            var i = Cli.Run("infer", "--checkpoint", trained.Ckpt, "--images", trained.Images, "--out", outDir);
            Cli.AssertError(i, ExitCodes.OutOfMemory, "out of memory", "try smaller images");
        }
        finally
        {
            Environment.SetEnvironmentVariable("CCR_MEMORY_LIMIT_MB", null);
        }
        Assert.False(File.Exists(Path.Combine(outDir, "eval.json")));
    }
}
