"""Appendix A's claims (localisation error %, lower is better), and that the nets beat
fixed boxes. Superiority tests on the seeds' paired errors, as the others."""
from .claims import _best_of, claim, per_seed


def localisation_claims(protocol, results):
    loc = protocol["localisation"]
    runs, rows = loc["runs"], list(loc["table9"])

    def center(name, index=0):
        return per_seed(results, protocol, "center", name, index)

    def dense(row, index=0):
        return per_seed(results, protocol, "dense5", row, index)

    def fixed(values_of, key):
        return _best_of(values_of(key, 1), values_of(key, 2))

    def named(kind, layers):
        return next((n for n in loc["table8"] if runs[n]["task"] == kind and
                     runs[n]["layers"] == layers), None)

    def trained(*row_names):
        return ["loc-" + loc["table9"][r]["run"] for r in row_names]
    scr_fc, pcr_fc, pcr_all = named("scr", "fc"), named("pcr", "fc"), named("pcr", "all")
    found = []
    if scr_fc and pcr_fc:
        found.append(claim("Localisation: PCR beats SCR (FC layers fine-tuned; central crop, "
                           "ground-truth class)", "34.3 vs 36.4", ("PCR", center(pcr_fc)),
                           ("SCR", center(scr_fc)), ["loc-" + pcr_fc, "loc-" + scr_fc]))
    if pcr_fc and pcr_all:
        found.append(claim("Localisation: fine-tuning all layers beats the FC layers only "
                           "(PCR, central crop)", "33.1 vs 34.3", ("all layers", center(pcr_all)),
                           ("FC layers", center(pcr_fc)), ["loc-" + pcr_all, "loc-" + pcr_fc]))
    for name in (scr_fc, pcr_all):
        if name:
            found.append(claim("Localisation: %s localises better than the better fixed box "
                               "(whole image or central box; central crop)" % name,
                               "(Appendix A's premise)", (name, center(name)),
                               ("fixed box", fixed(center, name)), ["loc-" + name]))
    if len(rows) >= 2:
        found.append(claim(
            "Localisation: training at S2 beats S1 (dense, %s vs %s, top-5)" % (
                rows[1], rows[0]), "28.2 vs 29.5", (rows[1], dense(rows[1])),
            (rows[0], dense(rows[0])), trained(*rows[:2])))
    if len(rows) >= 3:
        found.append(claim(
            "Localisation: several test scales beat one (dense, %s vs %s, top-5)" % (
                rows[2], rows[1]), "27.5 vs 28.2", (rows[2], dense(rows[2])),
            (rows[1], dense(rows[1])), trained(rows[2])))
    if loc["fusion"]:
        found.append(claim(
            "Localisation: fusion (%s) beats its better member (dense, top-5)" % " & ".join(
                loc["fusion"]), "26.9 vs 27.5", ("fusion", dense("fusion")),
            ("the better member", _best_of(*[dense(r) for r in loc["fusion"]])),
            trained(*loc["fusion"])))
    shown = rows[min(1, len(rows) - 1)]
    found.append(claim(
        "Localisation: dense boxes beat fixed boxes with the same classes (%s, top-5)"
        % shown, "(Appendix A's premise)", (shown, dense(shown)),
        ("fixed box", fixed(dense, shown)), trained(shown)))
    for found_claim in found:
        found_claim["error"] = "top-5 localisation error" if "top-5" in found_claim["claim"] \
            else "localisation error"
    return found
