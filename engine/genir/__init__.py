"""GenIR: the privacy-safe dataset pipeline of DreamClear (DESIGN.md section 6, docs/genir.md)."""
