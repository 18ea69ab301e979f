"""Numbers R uses that glmflow must use too, defined once."""

import numpy as np

DOUBLE_EPS = float(np.finfo(float).eps)  # R's .Machine$double.eps
LARGE_ROWS = 200_000  # from this many rows on, glm.fit takes the blocked path (glmflow.glm_large)
