using System.Diagnostics;
using System.Text;
using Ccr.Tests.Common;
using Ccr.Nn.IO;
using Ccr.Tests.Distributed;
using Ccr.Train.Commands;
using Ccr.Training.DataParallel;
using Xunit;

namespace Ccr.Tests.Errors;

/// <summary>
/// Under a launcher: srun's tasks are ranks like mpirun's, an error before the ranks connect names
/// its rank, and cancelling the job lets every rank finish the same step while rank 0 writes
/// last.ckpt, the job ending with 143 (it used to exit 1 and lose every step since the last
/// checkpoint boundary).
/// </summary>
public class NoDeadEndMpiTests : IDisposable
{
    readonly Scratch _tmp = new();
    public void Dispose() => _tmp.Dispose();

    static Func<string, string?> Env(params (string K, string V)[] vars) => k => vars.FirstOrDefault(v => v.K == k).V;

    [Fact]
    public void SrunTasksAreDetectedLikeMpirunRanksButABatchScriptIsOneProcess()
    {
        var srun = Launcher.Detect(Env(("SLURM_STEP_NUM_TASKS", "4"), ("SLURM_PROCID", "3"), ("SLURM_LOCALID", "1"),
                                       ("SLURM_STEP_TASKS_PER_NODE", "2(x2)"), ("SLURM_NTASKS", "4")));
        Assert.Equal(new Launcher.Ranks("srun", "SLURM_STEP_NUM_TASKS", 4, 3, 1, 2), srun);
        var mpirun = Launcher.Detect(Env(("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "1"),
                                         ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"), ("SLURM_STEP_NUM_TASKS", "4")));
        Assert.Equal(new Launcher.Ranks("mpirun", "OMPI_COMM_WORLD_SIZE", 2, 1, 1, 2), mpirun); // mpirun inside an allocation
        // the batch script of an sbatch --ntasks=4 job sees SLURM_NTASKS and SLURM_PROCID, and is one process
        Assert.Null(Launcher.Detect(Env(("SLURM_NTASKS", "4"), ("SLURM_PROCID", "0"), ("SLURM_LOCALID", "0"))));
        Assert.Null(Launcher.Detect(Env(("SLURM_STEP_NUM_TASKS", "1"), ("SLURM_PROCID", "0"))));
        Assert.Null(Launcher.Detect(Env(("OMPI_COMM_WORLD_SIZE", "1"))));
    }

    [SkippableFact]
    public void AConfigErrorUnderALauncherNamesItsRank()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "a child process with its own environment");
        // the error comes before MPI starts, so no MPI is needed: each rank printed the same bare line
        var r = CliProcess.Run(["train", "--config", "synth-cpu", "--set", "train.batch_size=0", "--out", _tmp.Dir("rank-prefix")],
            new() { ["SLURM_STEP_NUM_TASKS"] = "2", ["SLURM_PROCID"] = "1", ["SLURM_LOCALID"] = "1" }, TimeSpan.FromMinutes(2));
        Assert.True(r.Code == ExitCodes.Usage, r.Output);
        Assert.Contains("rank 1 of 2: synth-cpu: train.batch_size = 0: must be >= 1", r.Output);
    }

    [SkippableFact]
    public void CancellingAnMpirunJobWritesLastCkptAndEndsWith143()
    {
        Skip.IfNot(MpiRun.Available, MpiRun.MissingReason);
        Skip.IfNot(File.Exists("/usr/bin/pkill"), "needs pkill");
        string root = _tmp.Dir("mpi-cancel"), run = Path.Combine(root, "run");
        var args = Tiny.Train(Path.Combine(root, "data"), run, "train.batch_size=2", "train.epochs=50");
        var psi = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-np", "2", "--oversubscribe", "--bind-to", "none" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ccr.Train.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        psi.Environment["CI"] = "true";
        var output = new StringBuilder();
        using var p = ChildProcess.Start(psi, output);
        var sw = Stopwatch.StartNew();
        bool Logged() { lock (output) return output.ToString().Contains("step 3/"); }
        while (!p.HasExited && !Logged() && sw.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(20);
        // what scancel does: SIGTERM to every task (mpirun itself would SIGKILL its ranks 1 s later)
        using (var kill = Process.Start("/usr/bin/pkill", ["-TERM", "-P", p.Id.ToString()])) kill.WaitForExit();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(entireProcessTree: true); Assert.Fail("the stopped job did not end"); }
        p.WaitForExit();
        string log;
        lock (output) log = output.ToString();
        Assert.True(p.ExitCode == ExitCodes.Terminated, log);
        Assert.Contains("rank 0 of 2: terminated by mpirun (SIGTERM)", log);
        Assert.Contains("stopped by SIGTERM after", log);
        long step = long.Parse(SafeTensors.Read(Path.Combine(run, "last.ckpt")).Metadata["step"]);
        Assert.InRange(step, 3, 49);
        Assert.Equal(step, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length - 1); // every logged step is in it
    }
}
