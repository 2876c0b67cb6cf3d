"""The hook `inspector try` puts first on a swapped run's PYTHONPATH: this directory's
`sitecustomize.py` installs `_inspector_try_hook` in every Python process of the run, then
runs the user's own sitecustomize. Standard library only: it is imported into the user's
program, and nothing here is imported by inspector itself.
"""
