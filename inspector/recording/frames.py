"""The writer's dictionary of stacks (format 5): each distinct frame's text once in
stack_frames, and each stack a node of a tree in stack_nodes (its leaf frame, the node of
the stack less that frame, and the stack's id where spans name it), so stacks that share
their first frames share those nodes. Standard library only: the recorder imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# What separates a stack text's frames, root first (py-spy's folded stacks; the reader joins
# a stack's frames with it again, so any text, a frame holding one included, reads back as
# it was written).
FRAME_SEPARATOR = ";"


class _Db(Protocol):
    def execute(self, sql: str, params: Any = ()) -> Any: ...


class StackTree:
    """Stack texts -> stack ids, writing the frames and nodes a new stack brings. Stacks are
    numbered 1, 2, ... as they come (what spans name, small numbers whatever the tree's
    size); nodes and frames have numbers of their own. What a rolled-back batch wrote is
    forgotten (`forget_uncommitted`) and written again when next met."""

    def __init__(self) -> None:
        self._frames: dict[str, int] = {}
        self._nodes: dict[tuple[int, int], int] = {}   # (parent node or 0, frame) -> node
        self._stacks: dict[int, int] = {}              # node -> the stack id naming it
        # written since the last commit
        self._new_frames: list[str] = []
        self._new_nodes: list[tuple[int, int]] = []
        self._new_stacks: list[int] = []

    def stack_id(self, db: _Db, text: str, failures: Callable[[], int]) -> int | None:
        """The stack's id, its frames and nodes written where new; None if a write failed
        (the batch was rolled back: nothing of it is remembered)."""
        before = failures()
        parent = 0
        frames = text.split(FRAME_SEPARATOR)
        for depth, frame in enumerate(frames, start=1):
            frame_id = self._frames.get(frame)
            if frame_id is None:
                frame_id = len(self._frames) + 1
                db.execute("INSERT INTO stack_frames (frame_id, text) VALUES (?, ?)",
                           (frame_id, frame))
                if failures() != before:
                    return None
                self._frames[frame] = frame_id
                self._new_frames.append(frame)
            key = (parent, frame_id)
            node = self._nodes.get(key)
            if node is None:
                node = len(self._nodes) + 1   # ids grow: a parent's is always the smaller
                # the leaf of a new stack is named by it as it is made
                sid = len(self._stacks) + 1 if depth == len(frames) else None
                db.execute("INSERT INTO stack_nodes (node_id, parent_id, frame_id, stack_id)"
                           " VALUES (?, ?, ?, ?)", (node, parent or None, frame_id, sid))
                if failures() != before:
                    return None
                self._nodes[key] = node
                self._new_nodes.append(key)
                if sid is not None:
                    self._named(node, sid)
            parent = node
        sid = self._stacks.get(parent)
        if sid is None:  # a stack that others extend, named only now
            sid = len(self._stacks) + 1
            db.execute("UPDATE stack_nodes SET stack_id = ? WHERE node_id = ?", (sid, parent))
            if failures() != before:
                return None
            self._named(parent, sid)
        return sid

    def _named(self, node: int, sid: int) -> None:
        self._stacks[node] = sid
        self._new_stacks.append(node)

    def committed(self) -> None:
        self._new_frames.clear()
        self._new_nodes.clear()
        self._new_stacks.clear()

    def forget_uncommitted(self) -> None:
        """The batch was rolled back: its frames, nodes and stack ids are not in the file.
        Each kind's ids are handed out in order, so those of the batch were the last."""
        for frame in self._new_frames:
            self._frames.pop(frame, None)
        for key in self._new_nodes:
            self._nodes.pop(key, None)
        for node in self._new_stacks:
            self._stacks.pop(node, None)
        self.committed()
