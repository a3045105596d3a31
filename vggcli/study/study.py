"""A whole study: prepare, run every job, collect, judge, write the report and
``reproduction.json``. A killed study resumes where it stopped: finished jobs are
kept, an interrupted training run continues from its last checkpoint."""
import json
import os
import time

from .verdicts import judge
from .jobs import plan_jobs
from .plan import paths
from .prepare import prepare
from .protocol import load_protocol
from .record import build, provenance, write
from .report import commands_section, report
from .results import collect
from .runner import run_jobs, say


def study_time(out):
    """(seconds, invocations): the wall time of the invocations that ran jobs (a resumed
    study's pauses do not count), from ``sessions.jsonl``."""
    from ..core.plots import read_jsonl
    sessions = read_jsonl(os.path.join(out, "sessions.jsonl"))
    working = [s for s in sessions if s.get("jobs_run")] or sessions[-1:]
    return sum(s["end"] - s["start"] for s in working), len(working)


def json_beside(path):
    return os.path.splitext(path)[0] + ".json"


def reproduce(out, report_path, protocol=None, slots=None, docs_copy=None, progress=None,
              show_runs=False):
    """Run the study of ``protocol`` (the default protocol file when None) in ``out``, write
    the report and ``reproduction.json`` beside it (and copies at ``docs_copy``);
    ``show_runs``: the report also shows the training curves and every command (the
    demo's). Returns (report text, {job status: count})."""
    from data_tools.common import available_cores, write_text_atomic

    progress = progress or say
    protocol = protocol or load_protocol()
    started = time.time()
    prepare(protocol, out, progress)
    jobs = plan_jobs(protocol, out)
    slots = slots or available_cores()
    progress("%d jobs, %d at a time (%s)" % (len(jobs), slots, out))
    try:
        counts = run_jobs(jobs, slots, paths(out)["logs"], os.path.join(out, "jobs.jsonl"),
                          progress)
    finally:
        ran = sum(job.status in ("done", "failed") for job in jobs)
        with open(os.path.join(out, "sessions.jsonl"), "a") as f:
            f.write(json.dumps(dict(start=started, end=time.time(), jobs_run=ran)) + "\n")
    seconds, sessions = study_time(out)
    results = collect(protocol, out)
    judged = judge(protocol, results, out)
    info = dict(provenance(), seconds=round(seconds), invocations=sessions)
    extra = commands_section(protocol, out, report_path) if show_runs else ()
    title = "vgg demo: a one-seed profile of the study (make reproduce)" if show_runs else \
        "vgg reproduce: the paper's findings at small scale"
    text = report(protocol, results, judged, info, jobs, seconds, counts, sessions, extra,
                  title)
    record = build(protocol, results, judged, info)
    for path in filter(None, (report_path, docs_copy)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write(json_beside(path), record)
        write_text_atomic(path, text)
    return text, counts
