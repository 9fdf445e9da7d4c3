"""The model registry: named models of an owner, their numbered versions and aliases.

names.py checks names and aliases; reads.py looks models and versions up; writes.py adds
versions (from training jobs and from uploaded files), moves aliases, deletes and sets
thresholds; files.py validates uploaded model files; cache.py keeps loaded models in memory
for prediction (service/serving.py resolves a request to one of them); traffic.py splits an
alias's traffic between versions by weight and names its shadow version.
"""
