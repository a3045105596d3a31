"""The paper's ILSVRC-2012 numbers the report shows beside ours (SPEC.md §5)."""

# (net, scale name) -> (top-1, top-5) val error; S1/S2/J are the protocol's 256/384/jittered
SINGLE = {
    ("A", "S1"): (29.6, 10.4), ("A-LRN", "S1"): (29.7, 10.5), ("B", "S1"): (28.7, 9.9),
    ("C", "S1"): (28.1, 9.4), ("C", "S2"): (28.1, 9.3), ("C", "J"): (27.3, 8.8),
    ("D", "S1"): (27.0, 8.8), ("D", "S2"): (26.8, 8.7), ("D", "J"): (25.6, 8.1),
    ("E", "S1"): (27.3, 9.0), ("E", "S2"): (26.9, 8.7), ("E", "J"): (25.5, 8.0)}
MULTISCALE = {
    ("B", "S1"): (28.2, 9.6), ("C", "S1"): (27.7, 9.2), ("C", "S2"): (27.8, 9.2),
    ("C", "J"): (26.3, 8.2), ("D", "S1"): (26.6, 8.6), ("D", "S2"): (26.5, 8.6),
    ("D", "J"): (24.8, 7.5), ("E", "S1"): (26.9, 8.7), ("E", "S2"): (26.7, 8.6),
    ("E", "J"): (24.8, 7.5)}
MODES = {("D", "dense"): (24.8, 7.5), ("D", "multicrop"): (24.6, 7.5),
         ("D", "both"): (24.4, 7.2), ("E", "dense"): (24.8, 7.5),
         ("E", "multicrop"): (24.6, 7.4), ("E", "both"): (24.4, 7.1)}
FUSION = (23.7, 6.8)  # D & E, multi-crop & dense
# Appendix A: Table 8 (central crop, ground-truth class, S = 384: localisation error)
# and Table 9 (dense, top-5 localisation error), by the protocol's row names.
TABLE8 = {("scr", "fc"): 36.4, ("pcr", "fc"): 34.3, ("pcr", "all"): 33.1}
TABLE9 = (29.5, 28.2, 27.5)  # 256/256, 384/384, 384/{352,384}, in protocol order
LOC_FUSION = 26.9
