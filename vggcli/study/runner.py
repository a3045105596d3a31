"""The study's jobs in subprocesses: ``slots`` at a time, one OpenMP thread each, as
their dependencies finish; a journal line per finished job; stopped cleanly (the
children checkpoint) on SIGINT/SIGTERM/SIGHUP."""
import functools
import json
import os
import signal
import subprocess
import time

from ..core.processes import vgg_argv


def say(message):
    print(message, flush=True)


def clock(seconds):
    return "%d:%02d" % (seconds // 60, seconds % 60)


def run_jobs(jobs, slots, logs, journal, progress=None):
    """Run ``jobs`` (in order, as their dependencies finish) ``slots`` at a time. A failed
    job's dependants are skipped; the rest go on. Each job's output goes to
    ``logs/<job>.log``; ``journal`` gets a JSON line per finished job. Returns
    {status: count}."""
    from ..core.processes import catch_stop_signals, die_with_parent

    progress = progress or say
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", VGG_AUTO_DTYPE=os.environ.get(
        "VGG_AUTO_DTYPE", "float32"))
    by_name = {job.name: job for job in jobs}
    for job in jobs:
        if job.is_done():
            job.status = "kept"
    stopping, restore_signals = catch_stop_signals()  # the loop acts within 0.2 s
    running = {}  # name -> (Popen, start, log file)
    state = dict(started=time.time(), total=sum(job.status == "pending" for job in jobs),
                 finished=0)
    try:
        while True:
            if stopping:
                raise SystemExit(128 + stopping[0])  # the finally below stops the children
            _skip_orphans(jobs, by_name, state, progress)
            ready = [job for job in jobs if job.status == "pending" and all(
                by_name[d].status in ("done", "kept") for d in job.deps)]
            for job in ready[:max(0, slots - len(running))]:
                log = open(os.path.join(logs, job.name.replace("/", "-").replace(" ", "-")
                                        + ".log"), "ab")
                argv = job.used = job.command()
                log.write(("$ vgg %s\n" % " ".join(argv)).encode())
                log.flush()
                process = subprocess.Popen(
                    vgg_argv(argv), env=env, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=functools.partial(die_with_parent, os.getpid()))
                running[job.name] = (process, time.time(), log)
                job.status = "running"
            if not running:
                break
            time.sleep(0.2)
            for name, (process, start, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[name]
                _finished(by_name[name], process, start, log, journal, jobs, slots, state,
                          progress)
    finally:
        _stop(running)
        restore_signals()
    counts = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return counts


def _skip_orphans(jobs, by_name, state, progress):
    for job in jobs:
        if job.status == "pending" and any(by_name[d].status in ("failed", "skipped")
                                           for d in job.deps):
            job.status = "skipped"
            state["finished"] += 1
            progress("[%d/%d] skipped %s: a job it needs failed" % (
                state["finished"], state["total"], job.name))


def _finished(job, process, start, log, journal, jobs, slots, state, progress):
    job.seconds = time.time() - start
    job.status = "done" if process.returncode == 0 and job.is_done() else "failed"
    state["finished"] += 1
    with open(journal, "a") as f:
        f.write(json.dumps(dict(job=job.name, status=job.status, exit=process.returncode,
                                seconds=round(job.seconds, 1), command="vgg " + " ".join(
                                    job.used), time=time.time())) + "\n")
    progress("[%d/%d] %s %s in %.0f s%s (elapsed %s, at most about %s left)" % (
        state["finished"], state["total"], job.status, job.name, job.seconds,
        "" if job.status == "done" else ", exit %d: see %s" % (process.returncode, log.name),
        clock(time.time() - state["started"]), clock(estimate(jobs, slots))))


def _stop(running):
    for process, _, _ in running.values():  # interrupted: children checkpoint, stop
        process.send_signal(signal.SIGTERM)
    for process, _, log in running.values():
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def estimate(jobs, slots):
    """Seconds left at the pace of the jobs of the same kind done so far (training by
    epochs, the rest by count)."""
    left = 0.0
    kinds = {}
    for job in jobs:
        kinds.setdefault(job.name.split(" ")[0], []).append(job)
    for kind in kinds.values():
        done = [job for job in kind if job.status == "done"]
        if done:
            pace = sum(job.seconds for job in done) / sum(job.cost for job in done)
            left += pace * sum(job.cost for job in kind
                               if job.status in ("pending", "running"))
    return left / slots


def run_vgg(argv, progress):
    """``vgg ARGV`` in this process's foreground (cheap preparation steps)."""
    from ..core.errors import VggError
    progress("$ vgg " + " ".join(argv))
    done = subprocess.run(vgg_argv(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if done.returncode != 0:
        raise VggError("vgg %s failed (exit %d): %s" % (argv[0], done.returncode,
                                                        done.stdout.strip()[-500:]))
