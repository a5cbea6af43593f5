"""``instseg tune``: hyperparameter search over instseg settings on Ray Tune (Optuna TPE + ASHA).

- ``space.py``: the search-space file (setting -> distribution), validated against the config schema
- ``trial.py``: one trial = ``instseg.api.train`` of base + sample into an ordinary run folder, per-epoch
  reports through the engine's ``callbacks`` (Ultralytics: its ``on_fit_epoch_end``)
- ``runner.py``: the Tuner (local Ray or ``--address``), ``--resume`` via ``Tuner.restore``
- ``results.py``: trials.csv and best.yaml

Nothing here imports Ray at module import; without it the command names ``pip install 'instseg[tune]'``.
"""
