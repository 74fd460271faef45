using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Ccr;
using Ccr.Train.Data;

namespace Ccr.Train.Training;

/// <summary>
/// A loader batch on the device: the normalised images (N, 3, H, W), each task's labels — int32
/// (N, H, W) for class tasks, float (N, C, H, W) for the others — and, for the contrastive
/// regulariser, views of those same label tensors (<see cref="TaskLabels.FromDevice"/>: it prepares
/// validity and downsampled copies on the device; the labels are uploaded once, with the batch).
/// Every tensor belongs to the step's TensorScope.
/// </summary>
public sealed class DeviceBatch
{
    public required Tensor Images { get; init; }
    public required Batch Host { get; init; }
    public Dictionary<string, Tensor> IntLabels { get; } = new();
    public Dictionary<string, Tensor> FloatLabels { get; } = new();
    public Dictionary<string, TaskLabels> CcrLabels { get; } = new();
    /// <summary>Share of negatives among valid saliency pixels: the class weight of positives.</summary>
    public double SaliencyNegativeShare { get; private set; } = 0.5;

    public static DeviceBatch Create(Device d, Batch b, IReadOnlyList<string> tasks, DatasetInfo info, bool forCcr)
    {
        int n = b.N, h = b.Height, w = b.Width;
        var db = new DeviceBatch { Images = Tensor.FromArray(d, b.Images, n, 3, h, w), Host = b };
        db.Images.Name = "images";
        foreach (var task in tasks)
        {
            switch (task)
            {
                case TaskNames.Semseg or TaskNames.HumanParts or TaskNames.Saliency:
                {
                    var lab = (task == TaskNames.Semseg ? b.Semseg : task == TaskNames.HumanParts ? b.Parts : b.Saliency)
                        ?? throw Missing(task);
                    int classes = task == TaskNames.Saliency ? 2 : info.Classes(task);
                    db.IntLabels[task] = Tensor.FromLabels(d, lab, classes, [n, h, w], 255, task + " labels");
                    if (task == TaskNames.Saliency)
                    {
                        long neg = 0, valid = 0;
                        foreach (var v in lab) { if (v == 255) continue; valid++; if (v == 0) neg++; }
                        db.SaliencyNegativeShare = valid > 0 ? (double)neg / valid : 0.5;
                    }
                    if (forCcr) db.CcrLabels[task] = TaskLabels.FromDevice(task, db.IntLabels[task]);
                    break;
                }
                default:
                {
                    var lab = (task == TaskNames.Depth ? b.Depth : task == TaskNames.Normals ? b.Normals : b.Edge)
                        ?? throw Missing(task);
                    int c = task == TaskNames.Normals ? 3 : 1;
                    var t = Tensor.FromArray(d, lab, n, c, h, w);
                    t.Name = task + " labels";
                    db.FloatLabels[task] = t;
                    if (forCcr) db.CcrLabels[task] = TaskLabels.FromDevice(task, t);
                    break;
                }
            }
        }
        return db;
    }

    /// <summary>Disposes the regulariser's prepared labels (the batch's tensors go with the scope).</summary>
    public void DisposeCcrLabels()
    {
        foreach (var l in CcrLabels.Values) l.Dispose();
        CcrLabels.Clear();
    }

    static Exception Missing(string task) =>
        new InvalidOperationException($"the batch has no '{task}' labels, but the run trains that task");
}
