"""Testing (§3.2, §4): the inference engine (sources, decoding, rescaling, dense
forward with flips, precision, INT8), eval and fusion, folder prediction, deep
features and their SVM (Appendix B), and the devkit's submissions."""
