"""Pure analysis of a Recording: DataFrames in, facts and verdicts out (never files or
processes, never sentences: the text layer words them). `thread_states` splits each thread's
time; `diagnose` gives the verdicts.
"""

from inspector.analyze.diagnose import diagnose
from inspector.analyze.eventloop import LoopBlock, loop_blocks
from inspector.analyze.model import Diagnosis, PeakProcess, ProcessFacts, ThreadFacts, Verdict
from inspector.analyze.states import STATES, thread_states

__all__ = ["Diagnosis", "LoopBlock", "PeakProcess", "ProcessFacts", "STATES", "ThreadFacts",
           "Verdict", "diagnose", "loop_blocks", "thread_states"]
