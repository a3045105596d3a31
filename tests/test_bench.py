"""The benchmark's own arithmetic: medians of the samples with their range (two
samples give their mean, not the larger), and the physical peak's formula on known
CPUs (their published FLOP per cycle)."""
import pytest

from vggcli.bench import common as bench_common, distributed as bench_distributed
from vggcli.bench import peers as bench_peers


def test_rows_show_the_median_and_range_of_their_samples():
    row = bench_common._row("x", [10.0, 30.0], [5.0, 7.0, 9.0, 11.0, 13.0], "peer", 1.0, "/s")
    assert row["ours"] == 20.0 and row["ours_range"] == [10.0, 30.0]
    assert row["peer"] == 9.0 and row["peer_range"] == [5.0, 13.0]
    assert row["ratio"] == pytest.approx(20.0 / 9.0) and row["samples"] == [2, 5]
    memory = bench_common._row("rss", 300.0, 400.0, "peer", 1.0, "MB", higher_is_better=False)
    assert memory["ratio"] == pytest.approx(400.0 / 300.0) and memory["ours_range"] is None


def test_interleave_alternates_the_sides_and_joins_their_samples():
    calls = []

    def side(name, result):
        def run():
            calls.append(name)
            return result
        return run
    runs = bench_common._interleave({"a": side("a", [1.0, 2.0]), "b": side("b", 3.0),
                                     "c": side("c", 4.0)}, 3, once=("c",))
    assert calls == ["a", "b", "c", "a", "b", "a", "b"]
    assert runs == {"a": [1.0, 2.0] * 3, "b": [3.0] * 3, "c": [4.0]}


CPUS = {  # (cpuinfo fields, logical CPUs, published fp32 FLOP/cycle per core)
    "zen3-avx2": ("vendor_id: AuthenticAMD\ncpu family: 25\nflags: avx2 fma\n"
                  "siblings: 2\ncpu cores: 2\ncpu MHz: 2000\n", 2, 32),
    "zen4-avx512": ("vendor_id: AuthenticAMD\ncpu family: 25\nflags: avx2 avx512f\n"
                    "siblings: 8\ncpu cores: 4\ncpu MHz: 3000\n", 8, 32),
    "sapphire-rapids": ("vendor_id: GenuineIntel\ncpu family: 6\nflags: avx2 avx512f "
                        "amx_tile\nsiblings: 16\ncpu cores: 8\ncpu MHz: 2500\n", 16, 64),
}


@pytest.mark.parametrize("name", sorted(CPUS))
def test_physical_peak_follows_the_published_flop_per_cycle(tmp_path, monkeypatch, name):
    text, logical, per_cycle = CPUS[name]
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    monkeypatch.setattr("vggcli.core.env.available_cores", lambda: logical)
    peak, formula = bench_peers.physical_peak(str(info))
    fields = dict(line.split(": ") for line in text.strip().splitlines())
    cores = logical / (int(fields["siblings"]) / int(fields["cpu cores"]))
    assert peak == pytest.approx(cores * float(fields["cpu MHz"]) / 1000 * per_cycle)
    assert "%d FLOP/cycle" % per_cycle in formula


def test_the_scaling_model_is_the_stated_formula():
    """One machine is no speed-up; with free communication W machines are W times
    faster; otherwise the step is the formula's compute plus wire time, and 2-bit
    pushes lie between the two."""
    model = bench_distributed.scaling_model(0.01, 138357544, machines=(1, 4), gbits=(10 ** 6,))
    assert model[1, 10 ** 6] == pytest.approx(1.0)
    assert model[4, 10 ** 6] == pytest.approx(4.0, rel=1e-3)
    slow = bench_distributed.scaling_model(0.01, 138357544, machines=(4,), gbits=(10,))[4, 10]
    compressed = bench_distributed.scaling_model(0.01, 138357544, machines=(4,), gbits=(10,),
                                           compression=16)[4, 10]
    moved = 3 / 4 * 4 * 138357544 * 2 / (10e9 / 8)  # seconds on the wire per step
    assert slow == pytest.approx(256 * 0.01 / (64 * 0.01 + moved))
    assert slow < compressed < 4


def test_native_logs_are_silenced_and_stderr_restored(capfd):
    """What C++ writes to file descriptor 2 (as ImageRecordIter's log lines) is dropped
    inside the block; the descriptor works again after it, also after an error."""
    import os
    with bench_common.native_logs_silenced():
        os.write(2, b"ImageRecordIOParser2: from the C++ side\n")
    with pytest.raises(RuntimeError):
        with bench_common.native_logs_silenced():
            raise RuntimeError("inside")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_step_rates_leave_out_the_first_interval_and_count_every_worker(tmp_path):
    """Worker 0 logs the images of its own share of each batch; the first interval
    includes building the graph."""
    import json
    events = [dict(event="iter", images_per_second=r) for r in (5.0, 100.0, 120.0)]
    events.append(dict(event="epoch", iteration=30, val_top1_err=0.5))
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert bench_distributed._step_rates(str(tmp_path)) == [100.0, 120.0]
    assert bench_distributed._step_rates(str(tmp_path), workers=2) == [200.0, 240.0]


def _timed_steps_with(peaks, reps, settle, capsys):
    """Runs the peer programs' timed_steps with ``peaks[k]`` the peak RSS after step
    k + 1; returns (steps run, printed peak)."""
    from unittest import mock

    from vggcli.bench import steps
    calls = []
    with mock.patch.object(steps, "peak_rss_mb", lambda: peaks[len(calls) - 1]):
        steps.timed_steps(lambda: calls.append(1), 16, reps, settle)
    return len(calls), float(capsys.readouterr().out.split()[-1])


def test_memory_steps_continue_until_the_peak_settles(capsys):
    """Ours grows at the third and fourth training steps (measured: 3,683, 3,686, 3,882,
    4,068, 4,070 MB): a process that stopped at its minimum steps reported 3,686 MB."""
    grows = [3683, 3686, 3882, 4068, 4070, 4070, 4070, 4070, 4070, 4070]
    assert _timed_steps_with(grows, 1, False, capsys) == (2, 3686)
    steps, peak = _timed_steps_with(grows, 1, True, capsys)
    assert steps == 6 and peak == 4070  # warm-up, then 5 timed: two flat after the growth
    flat = [3100, 3180] + [3183] * 10
    assert _timed_steps_with(flat, 5, True, capsys) == (6, 3183)  # the minimum suffices
    endless = [1000 * 1.02 ** k for k in range(30)]  # never settles: 8 steps more at most
    assert _timed_steps_with(endless, 2, True, capsys)[0] == 1 + 2 + 8
