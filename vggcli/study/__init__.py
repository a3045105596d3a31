"""``make reproduce`` (``vgg reproduce``): the paper's findings (Tables 3-6, 8-9,
Appendices A and B) at small scale on a real dataset with scale variation, with
seeds, and verdicts by statistical tests stated before the run.

The study is fixed in a protocol file (``recipes/reproduce/protocol.yaml``); the
package follows its steps:

- ``protocol``: the protocol file, validated;
- ``plan``: every ``vgg`` command of the study as a job with its dependencies;
- ``runner``: the jobs in subprocesses, as many at once as there are cores;
- ``prepare``: the dataset, its records and the raw-pixel baseline;
- ``results``: the numbers the jobs wrote, per run, seed and test setting;
- ``stats`` and ``claims``: each claim's paired test and verdict;
- ``record`` and ``report``: ``reproduction.json`` and the Markdown report;
- ``study``: all of it, resumable (``reproduce``).

``make demo`` runs a one-seed profile of the same study (``recipes/reproduce/demo.yaml``).
"""
from .protocol import load_protocol, protocol_path  # noqa: F401
from .study import reproduce  # noqa: F401
