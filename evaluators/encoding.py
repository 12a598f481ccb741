"""The mixed-type space that membership-risk distances are measured in.

Distance: Euclidean over one-hot categoricals scaled by 1/√2 and standardised numericals. A
mismatched category adds exactly 1 to the squared distance, as does a one-standard-deviation gap
in a number, so every column weighs about the same. We chose it over Gower because

- it is an inner-product space, so nearest neighbours come from BLAS matrix products in chunks
  (``neighbours.py``) instead of a per-pair loop; Gower's L1 form cannot use that trick;
- Gower scales numbers by their range, so one outlier (Adult's capital-gain reaches 99,999)
  squeezes every ordinary difference in that column to nearly nothing.

The scaling and the vocabularies are fitted on the synthetic table, which may travel, so every
party measures in the same space without revealing anything of its own rows. A missing number
sits at the column mean (and lights a missing-indicator dimension when the synthetic table has
missing values in that column); a missing category is a category of its own. A category the
synthetic table never shows encodes as all zeros, half a mismatch away from every category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedtab.evaluators.inputs import ColumnLayout

MISSING = "\x00missing"
_HALF_SQRT = np.float32(1 / np.sqrt(2))


@dataclass(frozen=True)
class NumericScale:
    name: str
    center: float
    scale: float
    missing_indicator: bool


@dataclass(frozen=True)
class CategoryVocab:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class MixedEncoder:
    """Encodes prepared frames into the distance space; fitted once, applied by every party."""

    numerical: tuple[NumericScale, ...]
    categorical: tuple[CategoryVocab, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, layout: ColumnLayout) -> MixedEncoder:
        numerical = tuple(_fit_scale(frame[name], name) for name in layout.numerical)
        categorical = tuple(
            CategoryVocab(name, tuple(sorted(set(category_text(frame[name]))))) for name in layout.categorical
        )
        return cls(numerical, categorical)

    @property
    def dim(self) -> int:
        return sum(1 + s.missing_indicator for s in self.numerical) + sum(len(v.categories) for v in self.categorical)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """A float32 matrix, one row per row of ``frame``."""
        out = np.zeros((len(frame), self.dim), dtype=np.float32)
        at = 0
        for scale in self.numerical:
            values = frame[scale.name].to_numpy(dtype=np.float64)
            missing = np.isnan(values)
            out[:, at] = np.where(missing, 0.0, (values - scale.center) / scale.scale)
            at += 1
            if scale.missing_indicator:
                out[:, at] = missing
                at += 1
        rows = np.arange(len(frame))
        for vocab in self.categorical:
            codes = pd.Categorical(category_text(frame[vocab.name]), categories=vocab.categories).codes.astype(np.int64)
            known = codes >= 0
            out[rows[known], at + codes[known]] = _HALF_SQRT
            at += len(vocab.categories)
        return out


def category_text(series: pd.Series) -> np.ndarray:
    """Categories as text with missing values as a category of their own."""
    return series.astype(object).where(series.notna(), MISSING).to_numpy(dtype=object)


def row_hashes(encoded: np.ndarray) -> np.ndarray:
    """A 64-bit hash per encoded row: exact copies are found by equal hashes, not by float distances."""
    return pd.util.hash_pandas_object(pd.DataFrame(encoded), index=False).to_numpy()


def _fit_scale(series: pd.Series, name: str) -> NumericScale:
    values = series.to_numpy(dtype=np.float64)
    present = values[~np.isnan(values)]
    center = float(present.mean()) if present.size else 0.0
    spread = float(present.std()) if present.size else 0.0
    return NumericScale(name, center, spread if spread > 0 else 1.0, bool(np.isnan(values).any()))
