"""Markdown tables: the paper's Tables 1 and 2 from the code, and a generic renderer."""
from itertools import groupby

from .configs import layer_table, multiply_adds


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table with columns padded for reading in a terminal."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _layer_label(row):
    if row.kind == "conv":
        return "conv%d-%d" % (row.kernel, row.channels)
    if row.kind == "lrn":
        return "LRN"
    return "FC-%d" % row.channels


def stage_cells(rows):
    """Per stage, the layers as the paper writes them: 'conv3-256 x2, conv1-256'."""
    stages, current = [], []
    for row in rows:
        if row.kind == "pool":
            stages.append(current)
            current = []
        elif row.kind != "fc":
            current.append(_layer_label(row))
    cells = []
    for labels in stages:
        parts = []
        for label, same in groupby(labels):
            count = len(list(same))
            parts.append(label if count == 1 else "%s x%d" % (label, count))
        cells.append(", ".join(parts))
    return cells


def network_tables(configs, classes=1000, width_mult=1.0, fc_width=4096, crop_size=224):
    """Table 1 (layers per stage) and Table 2 (parameters, multiply-adds) for ``configs``.

    Returns {"rows": [per-config dicts], "markdown": text}. Parameter counts come
    from the built Gluon nets' shapes, so they check the builder, not a formula.
    """
    from .models import count_params, get_model

    knobs = dict(classes=classes, width_mult=width_mult, fc_width=fc_width,
                 crop_size=crop_size)
    records, stage_columns = [], []
    for config in configs:
        rows = layer_table(config, **knobs)
        weight_layers = sum(1 for r in rows if r.kind in ("conv", "fc"))
        params = count_params(get_model(config, **knobs))
        macs = multiply_adds(config, **knobs)
        stage_columns.append(stage_cells(rows))
        records.append(dict(net=config, weight_layers=weight_layers, params=params,
                            multiply_adds=macs, layers=[r.name for r in rows]))
    fc_labels = [_layer_label(r) for r in layer_table(configs[0], **knobs) if r.kind == "fc"]
    table1 = [["stage %d" % (i + 1)] + [col[i] for col in stage_columns] for i in range(5)]
    table1 += [[name, *[label] * len(configs)] for name, label in
               zip(("fc6", "fc7", "fc8"), fc_labels)]
    headers = ["", *["%s (%d layers)" % (r["net"], r["weight_layers"]) for r in records]]
    table2 = [[r["net"], r["weight_layers"], "{:,}".format(r["params"]),
               "%.0f" % (r["params"] / 1e6), "%.2f" % (r["multiply_adds"] / 1e9)]
              for r in records]
    text = ("Table 1: configurations (each stage ends with a 2x2 max-pool; every conv/fc6/fc7 "
            "is followed by ReLU; soft-max after fc8)\n\n"
            + markdown_table(headers, table1)
            + "\n\nTable 2: parameters and multiply-adds per %dx%d image (%s)\n\n"
            % (crop_size, crop_size, ", ".join("%s=%s" % kv for kv in knobs.items()))
            + markdown_table(["net", "weight layers", "parameters", "millions",
                              "GMACs"], table2))
    return {"rows": records, "markdown": text}
