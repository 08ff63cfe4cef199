"""`python main.py audit`: classifiers and a filter over a dataset → report.json + report.html.

Modules, one job each:

- ``cli``: arguments, loading, wiring; the terminal summary.
- ``sampling``: the split/age selection and the deterministic stratified ``--limit``.
- ``groups``: how faces are grouped (labels, a groups CSV, and without labels the measured skin tone).
- ``cache``: per-image results in ``OUT/cache`` keyed by image path, size and mtime + model hash (resume, reuse).
- ``collect``: runs the pipeline's batch API on what the cache lacks; gives one row per face.
- ``stats``: t and order-statistic CIs, Wilcoxon + rank-biserial, Holm, Kruskal–Wallis, Mann–Whitney.
- ``classifier_audit``, ``filter_audit``, ``focus``, ``detection``, ``label_check``: the analyses; ``gate`` the
  ship gate, ``summary`` the terminal's sentences.
- ``report``: assembles report.json (schema in docs/audit_schema.md).
- ``figures`` and ``html``: the self-contained report.html, drawn only from report.json
  (plus face crops re-rendered for the example grids).
"""
