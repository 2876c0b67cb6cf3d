"""The texts of the stacks a recording's spans name: rows of stack_texts (versions 1 to 4)
and, since version 5, each stack_nodes node's frames from the root, joined with ';'. The tree
comes from the file: each node must name a frame of stack_frames and a smaller node (so no
walk runs forever), and what the texts of the spans' stacks add up to is bounded (limits.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.columns import has_table, read_frame
from inspector.recording.frames import FRAME_SEPARATOR
from inspector.recording.limits import Limits, check_values, cut_frames


def stack_dictionary(db: sqlite3.Connection, path: Path, used: np.ndarray, bounds: Limits
                     ) -> pd.DataFrame:
    """`stack_id`, `text`: every row of stack_texts, and the text of each node of the tree
    that `used` (the spans' stack ids) names."""
    old = (read_frame(db, path, "SELECT stack_id, text FROM stack_texts", ("stack_id", "text"))
           if has_table(db, path, "stack_texts") else pd.DataFrame({"stack_id": [], "text": []}))
    check_values(path, "stack_texts", old)
    if not (has_table(db, path, "stack_nodes") and has_table(db, path, "stack_frames")):
        return old
    tree = _tree_texts(db, path, used, bounds)
    if tree.empty:
        return old
    twice = np.intersect1d(old["stack_id"].to_numpy(dtype=np.float64),
                           tree["stack_id"].to_numpy(dtype=np.float64))
    if len(twice):
        raise RecordingError(f"{path}: corrupt recording (stack {twice[0]:.0f} is both a"
                             " text and a node)")
    return pd.concat([old, tree], ignore_index=True) if len(old) else tree


def _ids(path: Path, table: str, frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column of ids as int64 (NULL: -1), each whole, not negative and, for a key,
    distinct."""
    values = frame[name].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = ~missing & ((values != np.floor(values)) | (values < 1))
    if bad.any():
        raise RecordingError(f"{path}: corrupt recording ({table}.{name} holds"
                             f" {values[bad][0]:.3g}, not an id)")
    ids = np.where(missing, -1, values).astype(np.int64)
    return ids


def _tree_texts(db: sqlite3.Connection, path: Path, used: np.ndarray, bounds: Limits
                ) -> pd.DataFrame:
    nodes = read_frame(db, path, "SELECT node_id, parent_id, frame_id, stack_id FROM stack_nodes",
                       ("node_id", "parent_id", "frame_id", "stack_id"))
    frames = read_frame(db, path, "SELECT frame_id, text FROM stack_frames",
                        ("frame_id", "text"))
    check_values(path, "stack_nodes", nodes)
    check_values(path, "stack_frames", frames)
    node_ids, parents, node_frames, stack_ids = (
        _ids(path, "stack_nodes", nodes, name)
        for name in ("node_id", "parent_id", "frame_id", "stack_id"))
    frame_ids = _ids(path, "stack_frames", frames, "frame_id")
    for table, what, ids in (("stack_nodes", "a node", node_ids),
                             ("stack_nodes", "a stack", stack_ids[stack_ids >= 0]),
                             ("stack_frames", "a frame", frame_ids)):
        if len(np.unique(ids)) != len(ids):
            raise RecordingError(f"{path}: corrupt recording ({table} holds {what} twice)")
    # a parent is a smaller node: a walk from any node to the root ends
    order = np.argsort(node_ids, kind="stable")
    node_ids, parents = node_ids[order], parents[order]
    node_frames, stack_ids = node_frames[order], stack_ids[order]
    parent_at = np.minimum(np.searchsorted(node_ids, parents), max(len(node_ids) - 1, 0))
    orphan = (parents >= 0) & ((parents >= node_ids) | (node_ids[parent_at] != parents))
    if orphan.any():
        i = int(np.argmax(orphan))
        raise RecordingError(f"{path}: corrupt recording (stack node {node_ids[i]}'s parent"
                             f" {parents[i]} is no smaller node)")
    frame_order = np.argsort(frame_ids, kind="stable")
    frame_ids = frame_ids[frame_order]
    frame_at = np.minimum(np.searchsorted(frame_ids, node_frames), max(len(frame_ids) - 1, 0))
    missing = ~np.isin(node_frames, frame_ids)
    if missing.any():
        i = int(np.argmax(missing))
        raise RecordingError(f"{path}: corrupt recording (stack node {node_ids[i]} names no"
                             f" frame {node_frames[i]})")
    # the nodes the spans name, each once
    named = np.flatnonzero(stack_ids >= 0)
    wanted = np.isin(stack_ids[named], pd.unique(np.asarray(used, dtype=np.float64)))
    leaves = named[wanted]
    # The texts, each walked from its leaf: no text of a stack no span names is made (a
    # chain's every prefix would be its length squared), and the walks stop at the bounds.
    texts = frames["text"].to_numpy(dtype=object)[frame_order]
    frame_text = [cut_frames(str(t)) for t in texts]
    parent_of = np.where(parents >= 0, parent_at, -1).tolist()
    frame_of = frame_at.tolist()
    out, walked, chars = [], 0, 0
    for leaf in leaves.tolist():
        path_frames = []
        i = leaf
        while i >= 0:
            path_frames.append(frame_of[i])
            i = parent_of[i]
        walked += len(path_frames)
        bounds.frames.check(path, walked, "stack frames in its stacks")
        text = FRAME_SEPARATOR.join([frame_text[f] for f in reversed(path_frames)])
        chars += len(text)
        bounds.chars.check(path, chars, "characters of stack text")
        out.append(text)
    return pd.DataFrame({"stack_id": stack_ids[leaves].astype(np.float64),
                         "text": np.asarray(out, dtype=object)})
