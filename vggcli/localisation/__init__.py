"""Localisation (Appendix A): the devkit's scoring of boxes (scoring) and
`vgg localise` and its fusion (localise)."""
