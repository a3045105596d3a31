"""The benchmark's own arithmetic: medians of the samples with their range (two
samples give their mean, not the larger), and the physical peak's formula on known
CPUs (their published FLOP per cycle)."""
import pytest

from vggcli import bench_common, bench_peers


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
    monkeypatch.setattr("vggcli._env.available_cores", lambda: logical)
    peak, formula = bench_peers.physical_peak(str(info))
    fields = dict(line.split(": ") for line in text.strip().splitlines())
    cores = logical / (int(fields["siblings"]) / int(fields["cpu cores"]))
    assert peak == pytest.approx(cores * float(fields["cpu MHz"]) / 1000 * per_cycle)
    assert "%d FLOP/cycle" % per_cycle in formula


def test_the_scaling_model_is_the_stated_formula():
    """One machine is no speed-up; with free communication W machines are W times
    faster; otherwise the step is the formula's compute plus wire time, and 2-bit
    pushes lie between the two."""
    model = bench_peers.scaling_model(0.01, 138357544, machines=(1, 4), gbits=(10 ** 6,))
    assert model[1, 10 ** 6] == pytest.approx(1.0)
    assert model[4, 10 ** 6] == pytest.approx(4.0, rel=1e-3)
    slow = bench_peers.scaling_model(0.01, 138357544, machines=(4,), gbits=(10,))[4, 10]
    compressed = bench_peers.scaling_model(0.01, 138357544, machines=(4,), gbits=(10,),
                                           compression=16)[4, 10]
    moved = 3 / 4 * 4 * 138357544 * 2 / (10e9 / 8)  # seconds on the wire per step
    assert slow == pytest.approx(256 * 0.01 / (64 * 0.01 + moved))
    assert slow < compressed < 4
