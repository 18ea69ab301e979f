"""Numbers R uses that glmflow must use too, defined once."""

import numpy as np

DOUBLE_EPS = float(np.finfo(float).eps)  # R's .Machine$double.eps
