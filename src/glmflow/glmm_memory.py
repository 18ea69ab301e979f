"""What a mixed model's factorisation holds in memory (the layout of ``glmflow.glmm.pirls``; kept
out of ``glmflow.glmm`` so that the config check imports no numba), so that a
design too large for the machine is refused with the estimate: by the config check before any
job (from the grouping factors' levels) and by the fit (from the built design)."""

from __future__ import annotations

import os

# Copies of the dense block (the random effects beyond the largest term, q_rest x q_rest) a fit
# holds at once: the assembled block, its factor, the inverse and a product's temporary.
DENSE_COPIES = 4
# Arrays of n x (columns of Z) a fit holds: Z, Z Lambda's values, their indices, the pattern
# positions and the gradient's H^-1 z rows.
ROW_COPIES = 5


def needed_bytes(n: int, term_sizes: list[int], columns: int) -> int:
    """Bytes for n rows, the terms' sizes (levels x k) and Z's columns: the largest term's
    blocks are diagonal, the rest dense."""
    q_rest = sum(term_sizes) - max(term_sizes, default=0)
    return 8 * (DENSE_COPIES * q_rest**2 + ROW_COPIES * n * columns)


def machine_bytes() -> int:
    """This machine's physical memory: what every size refusal compares with (the study's too)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_problem(n: int, sizes: dict[str, tuple[int, int]], at_least: bool = False) -> str | None:
    """The refusal's text when the design cannot fit in this machine's memory (None when it
    can). ``sizes``: each term's (levels, k); ``at_least`` when they are lower bounds."""
    needed = needed_bytes(n, [levels * k for levels, k in sizes.values()], sum(k for _, k in sizes.values()))
    available = machine_bytes()
    if needed <= available:
        return None
    q_rest = sum(levels * k for levels, k in sizes.values()) - max(levels * k for levels, k in sizes.values())
    terms = ", ".join(f"{name}: {levels} levels x {k}" for name, (levels, k) in sizes.items())
    return (
        f"the mixed model needs {'at least ' if at_least else ''}about {needed / 2**30:.1f} GiB ({n} rows; {terms}; "
        f"a dense block of {q_rest} x {q_rest} for the random effects beyond the largest term), more than this "
        f"machine's {available / 2**30:.1f} GiB: fit fewer rows, or fewer or smaller crossed factors"
    )
