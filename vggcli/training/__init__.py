"""Training (§3.1): the data pipeline with scale jittering, crops, flips and colour
shift, the loop with its schedule, checkpoints, recipes (Table 3's rows) and the
classification and localisation tasks."""
