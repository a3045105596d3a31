"""What the peer programs share: the peak RSS of their own process, and timed steps.

Peak RSS is VmHWM, not ru_maxrss, which a child inherits from the parent it was forked
from (the bench process, several GB by then)."""
import time


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0


def timed_steps(step, batch, reps, settle):
    """After a warm-up step, at least ``reps`` timed steps; with ``settle``, more (8 at
    most) until two steps in a row leave the peak RSS within 1%: MXNet's oneDNN adds a
    buffer the size of conv1's output at VGG-D's third and fourth training steps.
    Prints the images/s of each timed step and the peak RSS in MB (one line)."""
    step()
    rates, flat, last = [], 0, peak_rss_mb()
    while len(rates) < reps or (settle and flat < 2 and len(rates) < reps + 8):
        started = time.perf_counter()
        step()
        rates.append(batch / (time.perf_counter() - started))
        now = peak_rss_mb()
        flat, last = (flat + 1 if now <= last * 1.01 else 0), now
    print(",".join("%.6g" % r for r in rates), peak_rss_mb())
