"""Pictures a person would rather look at than read: training curves."""
import json


def read_jsonl(path, event=None):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                record = json.loads(line)
                if event is None or record.get("event") == event:
                    records.append(record)
    return records


def plot_training_curves(log_path, png_path):
    """Loss and top-1/top-5 error (train and val) per epoch, from log.jsonl."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = read_jsonl(log_path, "epoch")
    if not epochs:
        return None
    x = [r["epoch"] for r in epochs]
    fig, (loss_ax, err_ax) = plt.subplots(1, 2, figsize=(11, 4))
    loss_ax.plot(x, [r["train_loss"] for r in epochs], "o-", label="train")
    loss_ax.plot(x, [r["val_loss"] for r in epochs], "s-", label="val (centre crop)")
    loss_ax.set(xlabel="epoch", ylabel="soft-max cross-entropy", title="loss")
    for split, style in (("train", "-"), ("val", "--")):
        for k in ("top1", "top5"):
            err_ax.plot(x, [100 * r["%s_%s_err" % (split, k)] for r in epochs], style,
                        marker="o", label="%s %s" % (split, k.replace("top", "top-")))
    for r in epochs:
        if r.get("schedule") == "reduced":
            err_ax.axvline(r["epoch"], color="grey", lw=0.8, ls=":")
    err_ax.set(xlabel="epoch", ylabel="error (%)", title="error (dotted: lr / 10)")
    for ax in (loss_ax, err_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    from data_tools.common import atomic_output
    try:
        with atomic_output(png_path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return png_path
