namespace Ccr.Kernels.Contrastive;

internal static partial class CcrAnchors
{
    /// <summary>Host reference of the anchor sampler: a whole-image sort of the valid pixels by
    /// (hash, index) instead of a radix select or heap.</summary>
    public static class Reference
    {
        /// <summary>anchors (N, perImage) in pixel order, -1 padded, for valid (N, HW).</summary>
        public static int[] Sample(int[] valid, int n, int hw, int perImage, ulong seed, int counter)
        {
            ulong stream = Stream(seed, counter);
            var anchors = new int[n * perImage];
            for (int b = 0; b < n; b++)
            {
                var chosen = Enumerable.Range(0, hw).Where(i => valid[b * hw + i] != 0)
                    .OrderBy(i => AnchorKey(stream, b, i)).ThenBy(i => i)
                    .Take(perImage).OrderBy(i => i).ToArray();
                for (int j = 0; j < perImage; j++) anchors[b * perImage + j] = j < chosen.Length ? chosen[j] : -1;
            }
            return anchors;
        }
    }
}
