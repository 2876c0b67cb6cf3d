"""`inspector try`: re-runs a program with the advised concurrency model swapped in (thread
pools <-> process pools, through an import hook in the child's environment, never by editing
its files) and measures the speed-up against the prediction. hook/ is what the child imports
(standard library only); launch runs the child; runner is the procedure; outcome the numbers.
"""

from inspector.trial.outcome import PREDICTION_TOLERANCE, TrialResult
from inspector.trial.runner import DEFAULT_REPEAT, NothingToTry, TrialPlan, run_trial

__all__ = ["DEFAULT_REPEAT", "PREDICTION_TOLERANCE", "NothingToTry", "TrialPlan",
           "TrialResult", "run_trial"]
