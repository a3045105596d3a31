"""What a person reads at the end of a pack: records, skips, size and speed per split,
the boxes found, the mean RGB (from the manifest)."""


def skipped_count(manifest):
    return len(manifest["refused"]) + sum(len(s["skipped"])
                                          for s in manifest["splits"].values())


def summary(manifest):
    """Lines a person reads at the end of a pack."""
    lines = []
    for name, split in manifest["splits"].items():
        rate = split["images_per_second"]
        lines.append("%s: %d records, %d skipped, %.1f MB%s" % (
            name, split["records"], len(split["skipped"]), split["bytes"] / 1e6,
            ", %.0f images/s" % rate if rate else ""))
        found = split.get("boxes") or {}
        if found.get("images") or found.get("dropped"):
            lines.append("  boxes: %d images with %d objects (%d clipped to the image, %d "
                         "dropped as empty; %d images lost all theirs)" % (
                             found["images"], found["objects"], found["clipped"],
                             found["dropped"], found["images_left_without"]))
        for bad in split["skipped"][:5]:
            lines.append("  skipped %s: %s" % (bad["id"], bad["reason"]))
        if len(split["skipped"]) > 5:
            lines.append("  ... %d more in manifest.json" % (len(split["skipped"]) - 5))
    for bad in manifest["refused"]:
        lines.append("refused %s: %s" % (bad["id"], bad["reason"]))
    if "mean_rgb" in manifest:
        lines.append("training mean RGB: %.3f %.3f %.3f" % tuple(manifest["mean_rgb"]))
    empty = [i for i, n in enumerate(manifest["splits"].get("train", {}).get("per_class", []))
             if n == 0]
    if empty:
        lines.append("warning: %d classes have no training images (labels are kept): %s"
                     % (len(empty), ", ".join(map(str, empty[:10]))))
    return lines
