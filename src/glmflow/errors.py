"""The one error type that glmflow raises for bad input: its message names what is wrong."""

from pathlib import Path


class GlmflowError(ValueError):
    """Bad input (config, data file, column, formula): the message says which and where."""


# A rule script that stops on a GlmflowError ends its log with this line and the message
# (glmflow.io.logged): the run that submitted the job reads it back from the log, prints it and
# does not submit the job again (glmflow.snakemake_fixes), since bad input or a failed fit fails
# the same way each time. A job that died without it (a lost node, a cancel) may be retried.
LOG_MARK = "GLMFLOW ERROR (bad input or a failed fit; not retried):"


def error_in_log(path) -> str | None:
    """The GlmflowError message a rule script's log ends with, or None (no log, other failure)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    where = text.rfind("\n" + LOG_MARK)  # the log's first line is always glmflow's own
    return None if where < 0 else text[where + 1 + len(LOG_MARK) :].strip()
