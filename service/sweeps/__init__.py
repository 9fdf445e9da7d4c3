"""Hyperparameter sweeps: Optuna studies whose trials are ordinary training jobs.

space.py (search-space paths and distributions), study.py (Optuna rebuilt from our rows),
records.py (reading those rows), submit.py (creating a sweep), driver.py (advance: the one
step that queues trials and ends sweeps), trials.py (a trial job's pruning and completion,
called from run_training), views.py (responses).
"""
