"""How much of the CPUs' time the hypervisor gave to other machines during a run.

On a virtual machine, "steal" time is time a virtual CPU was ready to run but
the host ran something else. It slows every implementation, not evenly (a
thread waiting for a descheduled partner waits longer), so a table measured
under it says so. Linux counts it in ``/proc/stat``; elsewhere it is unknown.
"""

from __future__ import annotations

STAT_PATH = "/proc/stat"


def counters(stat_text: str | None = None) -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot, or None where not counted.

    ``stat_text`` is the content of ``/proc/stat`` (read when None). Its first
    line is ``cpu user nice system idle iowait irq softirq steal ...``.

    Example:
        >>> counters("cpu  10 0 5 80 0 0 0 5 0 0\\ncpu0 5 0 2 40 0 0 0 3 0 0\\n")
        (5, 100)
    """
    if stat_text is None:
        try:
            with open(STAT_PATH) as handle:
                stat_text = handle.readline()
        except OSError:
            return None
    fields = stat_text.split("\n", 1)[0].split()
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    ticks = [int(field) for field in fields[1:9]]
    return ticks[7], sum(ticks)


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the CPUs' time stolen between two :func:`counters` readings, or None.

    Example:
        >>> stolen_share((5, 100), (55, 300))
        0.25
    """
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def describe(share: float | None) -> str:
    """A clause for a report: how much was stolen (:func:`stolen_share`), or that it is not
    known.

    Example:
        >>> describe(0.25)
        "steal time 25%: the host ran other machines for that share of the CPUs' time"
    """
    if share is None:
        return "steal time unknown (no /proc/stat, or no tick between its readings)"
    return f"steal time {share:.0%}: the host ran other machines for that share of the CPUs' time"
