"""The published VW-SDK code's window selection, reproduced exactly (docs/cost-model.md#reference-quirk).

The published loop keeps its "best so far" in a FIFO queue: at the start of every ``j`` row the
row's first candidate is appended, and a candidate replaces the *oldest* entry (pop front, append)
when it beats that entry. The answer is the front of the queue at the end. The front is always the
``L``-th most recent append, ``L`` being the number of rows started so far, so the simulation
below jumps from one replacement to the next with a vectorized search instead of visiting every
candidate.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def fifo_select(
    cycles: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_], row_start: npt.NDArray[np.bool_]
) -> int:
    """Index (into ``cycles``) the published selection returns, or -1 without a valid candidate.

    ``cycles``/``valid``/``row_start`` follow the loop order (``j`` outer, ``i`` inner);
    ``row_start`` marks ``i == 1``. Within a row the valid candidates must be contiguous and
    start at ``i == 1`` (true for the array-fit validity, which is monotone in ``i``).
    """
    positions = np.flatnonzero(valid)
    if positions.size == 0:
        return -1
    values = cycles[positions]
    starts = np.flatnonzero(row_start[positions])
    if starts.size == 0 or starts[0] != 0:
        raise ValueError("fifo_select: every row of valid candidates must start at i == 1")
    ends = np.append(starts[1:], positions.size)
    appended: list[int] = []
    for row, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        appended.append(start)
        depth = row + 1
        t = start
        while t < end:
            front = values[appended[-depth]]
            beats = values[t:end] < front
            k = int(beats.argmax())
            if not beats[k]:
                break
            appended.append(t + k)
            t += k + 1
    return int(positions[appended[-len(starts)]])
