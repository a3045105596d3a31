"""``vgg train``, ``vgg recipe`` and ``vgg launch``: the training procedure (§3.1, §3.3)."""
import click

from .options import DEVICES_TEXT, NET
from ..core.precision import DTYPES

def _field_options(command):
    """One option per training setting, generated from recipes.FIELDS (one source)."""
    from ..training.recipes import CHOICES, FIELDS

    types = {int: int, float: float, str: str}
    special = {"net": NET, "devices": DEVICES_TEXT}
    for key in reversed(list(FIELDS)):
        default, kind, help_text = FIELDS[key]
        flag = "--" + key.replace("_", "-")
        shown = "" if default is None else " [paper/default: %s]" % (default,)
        kind = special.get(key) or (click.Choice(CHOICES[key]) if key in CHOICES
                                    else types[kind])
        command = click.option(flag, key, type=kind, default=None,
                               help=help_text + shown)(command)
    return command


@click.command()
@click.option("--recipe", default=None,
              help="A recipe name (see 'vgg recipe list') or YAML file; flags override it.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its newest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_field_options
def train(recipe, resume_dir, quiet, **options):
    """Train a network with the paper's procedure (§3.1), on one or several devices.

    Defaults are the paper's: SGD, momentum 0.9, batch 256, weight decay 5e-4,
    dropout 0.5, lr 1e-2 divided by 10 on validation plateaus (3 times at
    most), up to 74 epochs. Writes config.yaml, log.jsonl (JSON lines),
    curves.png, checkpoints/ (every epoch), best.params and final.params.
    Exit status: 0 done, 1 training failed (e.g. the loss diverged), 2 bad input.

    \b
    Example:
        vgg train --recipe A-256 --data data/imagenet --out runs/A-256 --devices gpu:0-3
        vgg train --recipe D-256 --data data/imagenet --out runs/D-256 \\
            --init-from runs/A-256/best.params --devices gpu:0-3
        vgg train --resume runs/D-256
        vgg train --recipe D-pcr-384 --data data/imagenet-boxes --out runs/D-pcr-384 \\
            --finetune-from runs/D-384/best.params
    """
    from ..training.train import train as run_training
    from ..training.train_state import run_config

    config, meta = run_config(recipe, options, resume_dir)
    summary = run_training(config, meta, resume=bool(resume_dir), progress=not quiet)
    click.echo("done: %d epochs, %d iterations, best val %s %.2f%%; weights in %s"
               % (summary["epochs"], summary["iterations"],
                  "top-1 error" if config.get("task", "classify") == "classify"
                  else "localisation error", 100 * (summary["best_val_top1_err"] or 0),
                  summary["out"]))


@click.group()
def recipe():
    """The paper's Table 3 rows as training recipes (recipes/*.yaml).

    \b
    Example:
        vgg recipe list
        vgg recipe plan E-jitter --data data/imagenet --devices gpu:0-3
    """


@recipe.command("list")
def recipe_list():
    """List the recipes with their descriptions.

    \b
    Example:
        vgg recipe list
    """
    from ..training.recipes import list_recipes, load_recipe

    for name in list_recipes():
        click.echo("%-12s %s" % (name, load_recipe(name).get("description", "")))


@recipe.command("show")
@click.argument("name")
def recipe_show(name):
    """Print a recipe resolved over the paper's defaults.

    \b
    Example:
        vgg recipe show D-384
    """
    import yaml

    from ..training.recipes import resolve
    config, meta = resolve(name)
    click.echo(yaml.safe_dump(dict(meta, **config), sort_keys=False).rstrip())


@recipe.command("plan")
@click.argument("name")
@click.option("--data", default="DATA", show_default=True, help="Packed dataset folder.")
@click.option("--runs", default="runs", show_default=True, help="Folder for the run folders.")
@click.option("--devices", type=DEVICES_TEXT, default=None,
              help="Devices for every run, e.g. gpu:0-3.")
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
              help="Precision for every run (see vgg train --dtype).")
def recipe_plan(name, data, runs, devices, dtype):
    """Print the chain of runs that produces a recipe, as exact commands.

    \b
    Example:
        vgg recipe plan E-jitter      # A-256 -> E-256 -> E-384 -> E-jitter
    """
    from ..training.recipes import plan_commands

    steps = plan_commands(name, data=data, runs=runs, devices=devices, dtype=dtype)
    click.echo(" -> ".join(step[0] for step in steps))
    for number, (step, description, command) in enumerate(steps, 1):
        click.echo("\n# %d. %s: %s\n%s" % (number, step, description, command))


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("-n", "--workers", type=click.IntRange(min=1), required=True,
              help="Worker processes (each trains on its shard of the records).")
@click.option("-s", "--servers", type=click.IntRange(min=1), default=None,
              help="Parameter-server processes. Default: as many as workers.")
@click.option("--launcher", type=click.Choice(["local", "ssh"]), default="local",
              show_default=True, help="local: this machine, loopback only; ssh: --hosts.")
@click.option("--hosts", "hosts_file", type=click.Path(dir_okay=False), default=None,
              help="Host file for --launcher ssh, one host per line.")
@click.option("--interface", default=None,
              help="Network interface for ps-lite with ssh (e.g. eth0).")
@click.option("--start-timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds a worker may stay silent at start before the job is stopped.")
@click.option("--ssh-config", default=None, type=click.Path(dir_okay=False),
              help="ssh configuration file for --launcher ssh (ssh -F) instead of "
                   "~/.ssh/config; its known hosts and keys decide who is trusted.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(workers, servers, launcher, hosts_file, interface, start_timeout, ssh_config,
           command):
    """Run a training job on MXNet's distributed KVStore (ps-lite dist_sync).

    Starts the scheduler, servers and workers, prefixes each one's output with
    its rank, and stops the whole job (non-zero exit) as soon as any process
    fails. In local mode everything listens on 127.0.0.1 only.

    \b
    Example:
        vgg launch -n 2 -s 1 -- vgg train --kvstore dist_sync --net A \\
            --data data/imagenet --out runs/A-dist
        vgg launch -n 4 --launcher ssh --hosts hosts.txt --interface eth0 -- \\
            vgg train --kvstore dist_device_sync --devices gpu:0-3 ...
    """
    from ..distributed.launch import launch as run_launch

    run_launch(list(command), workers, servers=servers, launcher=launcher,
               hosts_file=hosts_file, interface=interface, start_timeout=start_timeout,
               ssh_config=ssh_config)


COMMANDS = [train, recipe, launch]
