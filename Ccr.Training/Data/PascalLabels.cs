namespace Ccr.Training.Data;

/// <summary>
/// The PASCAL-Context label rules of the reference loaders (Multi-Task-Learning-PyTorch's
/// data/pascal_context.py and custom_transforms.AddIgnoreRegions; ATRC's src/data/pascal_context.py
/// and transforms.AddIgnoreRegions), kept in one place.
/// </summary>
public static class PascalLabels
{
    /// <summary>
    /// Human parts of an image (or a training crop) with no part pixel are not annotated: every
    /// pixel becomes ignore (255). The reference loaders label such images all background and then
    /// AddIgnoreRegions turns a label that is only 0 (MTL) or only 0 and 255 (ATRC) into all 255,
    /// and MTL's eval_human_parts skips it, so it counts neither in training nor in parts mIoU.
    /// Returns true when the label was turned to ignore.
    /// </summary>
    public static bool IgnoreUnannotatedParts(int[]? parts)
    {
        if (parts == null) return false;
        foreach (int v in parts) if (v != 0 && v != Sample.Ignore) return false;
        Array.Fill(parts, Sample.Ignore);
        return true;
    }

    /// <summary>
    /// Distilled normals are kept only where the LabelMap class is one of
    /// <see cref="NormalsValidClasses"/> (the reference's _load_normals_distilled); elsewhere the
    /// normal is the zero vector, which marks "no label" (AddIgnoreRegions turns it into 255).
    /// normals (3, H, W), labelMap (H, W), in place.
    /// </summary>
    public static void MaskNormals(float[] normals, int[] labelMap)
    {
        int n = labelMap.Length;
        if (normals.Length != 3 * n) throw new ArgumentException($"MaskNormals: {normals.Length} normal values for {n} pixels");
        for (int i = 0; i < n; i++)
            if (!NormalsValidClasses.ContainsKey(labelMap[i]))
                normals[i] = normals[n + i] = normals[2 * n + i] = 0f;
    }

    /// <summary>
    /// PASCAL-Context LabelMap classes (context ids, 1..459) on which the distilled normals are
    /// kept: the classes of data/db_info/nyu_classes.json that are also in
    /// data/db_info/context_classes.json, without 'unknown', plus 'tvmonitor', as both
    /// Multi-Task-Learning-PyTorch (data/pascal_context.py, normals_valid_classes) and ATRC
    /// (src/data/pascal_context.py; same JSON files) build the list. 170 classes.
    /// </summary>
    public static readonly IReadOnlyDictionary<int, string> NormalsValidClasses = new Dictionary<int, string>
    {
        [3] = "air conditioner", [4] = "antenna", [6] = "ashtray", [9] = "bag", [10] = "ball",
        [11] = "balloon", [13] = "barrel", [15] = "basket", [17] = "bathtub", [18] = "bed", [22] = "bench",
        [23] = "bicycle", [29] = "blackboard", [30] = "board", [33] = "book", [34] = "bottle", [36] = "bowl",
        [37] = "box", [38] = "bracelet", [39] = "brick", [41] = "broom", [43] = "bucket", [46] = "cabinet",
        [49] = "cake", [50] = "calculator", [51] = "calendar", [53] = "camera", [55] = "can", [56] = "candle",
        [59] = "car", [61] = "cart", [62] = "case", [65] = "cat", [66] = "cd", [68] = "ceiling",
        [69] = "cell phone", [72] = "chair", [73] = "chessboard", [78] = "clock", [83] = "coffee machine",
        [84] = "comb", [85] = "computer", [87] = "cone", [88] = "container", [95] = "corkscrew",
        [96] = "counter", [101] = "crate", [104] = "cup", [105] = "curtain", [107] = "cutting board",
        [111] = "dishwasher", [113] = "dog", [115] = "door", [122] = "drum", [124] = "duck",
        [135] = "envelope", [141] = "fan", [142] = "faucet", [143] = "fax machine",
        [146] = "fire extinguisher", [150] = "fish tank", [154] = "flag", [157] = "flashlight",
        [158] = "floor", [159] = "flower", [165] = "fork", [172] = "fruit", [174] = "furnace", [181] = "glass",
        [183] = "globe", [184] = "glove", [191] = "guitar", [193] = "hammer", [195] = "handle",
        [197] = "hanger", [199] = "hat", [202] = "heater", [213] = "ipod", [215] = "ironing board",
        [216] = "jar", [219] = "key", [220] = "keyboard", [223] = "knife", [225] = "ladder", [228] = "laptop",
        [230] = "lid", [232] = "light", [233] = "light bulb", [238] = "lock", [239] = "machine", [242] = "map",
        [243] = "mask", [246] = "mattress", [250] = "microphone", [251] = "microwave", [252] = "mirror",
        [255] = "money", [260] = "mouse", [261] = "mouse pad", [263] = "napkin", [269] = "oven", [272] = "pan",
        [273] = "paper", [275] = "paper cutter", [281] = "pen", [283] = "pencil", [284] = "person",
        [285] = "photo", [286] = "piano", [287] = "picture", [288] = "pig", [290] = "pillow", [291] = "pipe",
        [292] = "pitcher", [293] = "plant", [295] = "plate", [304] = "pool table", [307] = "pot",
        [309] = "printer", [310] = "projector", [314] = "radiator", [315] = "radio", [319] = "range hood",
        [323] = "remote control", [329] = "rope", [330] = "rug", [331] = "ruler", [336] = "scale",
        [342] = "sculpture", [345] = "sewing machine", [349] = "shelves", [350] = "shoe",
        [351] = "shopping cart", [352] = "shovel", [355] = "sign", [357] = "sink", [368] = "sofa",
        [370] = "spatula", [371] = "speaker", [374] = "spoon", [379] = "stapler", [380] = "stick",
        [383] = "stool", [384] = "stove", [397] = "table", [401] = "tape", [403] = "telephone", [405] = "tent",
        [407] = "toaster", [408] = "toilet", [411] = "toothbrush", [412] = "towel", [413] = "toy",
        [414] = "toy car", [417] = "trampoline", [419] = "tray", [421] = "tricycle", [423] = "trophy",
        [427] = "tvmonitor", [429] = "typewriter", [430] = "umbrella", [432] = "vacuum cleaner",
        [440] = "wall", [441] = "wallet", [442] = "wardrobe", [443] = "washing machine", [444] = "watch",
        [446] = "water dispenser", [454] = "window", [457] = "wire",
    };
}
