"""``make demo``: the whole paper end to end in minutes: a one-seed profile of ``make
reproduce``'s study (``recipes/reproduce/demo.yaml``), run by the same planner,
runner and report, on the same real dataset (scikit-learn's 1,797 handwritten digit
scans placed at random sizes and positions on crops of real photos).

pack (with each digit's box) -> train nets A and D -> fine-tune D with scale
jittering -> test them (dense, multi-crop, both; one and three scales) -> fuse A & D
-> fc7 features and a linear SVM against raw pixels -> a PCR localisation net from
D (Appendix A), on the central crop and densely, against fixed boxes. Every step is
a real ``vgg`` command; ``demo/REPORT.md`` has the paper-shaped tables, the
training curves and the exact commands.
"""
import os
import shutil
import sys
import time

OUT = os.path.join("demo", "out")
REPORT = os.path.join("demo", "REPORT.md")


def main():
    import vggcli
    vggcli.configure()
    from .study import load_protocol, protocol_path, reproduce

    started = time.time()
    shutil.rmtree(OUT, ignore_errors=True)  # the demo's own folder, rebuilt each time
    _, counts = reproduce(OUT, REPORT, protocol=load_protocol(protocol_path("demo.yaml")),
                          show_runs=True)
    print("\nreport: %s (%.0f s in all); make reproduce runs the whole study"
          % (REPORT, time.time() - started))
    return 1 if counts.get("failed") or counts.get("skipped") else 0


if __name__ == "__main__":
    sys.exit(main())
